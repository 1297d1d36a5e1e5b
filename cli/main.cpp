#include <iostream>

#include "common/platform/build_info.h"

int main() {
  std::cout << conveyor::describe(conveyor::build_info());
  return 0;
}
