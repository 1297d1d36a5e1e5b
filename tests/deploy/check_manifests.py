#!/usr/bin/env python3
"""Checks the rendered Kubernetes manifests of deploy/k8s and the Dockerfile.

    check_manifests.py --root REPO --rendered DIR [--binary PATH]

DIR holds one `kubectl kustomize` output per kustomization: single-gpu.yaml,
multi-node.yaml, cpu-demo.yaml, submit-job.yaml. Every problem is printed; the exit
status is 1 when there is any. --self-test also breaks copies of the manifests in
known ways and fails unless each breakage is reported.
"""
import argparse
import copy
import json
import os
import re
import shlex
import subprocess
import sys

import yaml

OVERLAYS = ("single-gpu", "multi-node", "cpu-demo")
GPU_OVERLAYS = ("single-gpu", "multi-node")
EXAMPLE = "submit-job"
METRICS_PORT = 9400
MIN_STARTUP_SECONDS = 15 * 60
CURVE_LINES = ("server_key", "producer_keys", "worker_keys")


# ---- reading ---------------------------------------------------------------------------


def load_rendered(rendered_dir, name):
    with open(os.path.join(rendered_dir, name + ".yaml"), encoding="utf-8") as f:
        return [d for d in yaml.safe_load_all(f) if d]


def find(docs, kind, name=None):
    return [
        d
        for d in docs
        if d.get("kind") == kind
        and (name is None or d["metadata"]["name"] == name or generated_name(d, name))
    ]


def generated_name(doc, name):
    """A generator's name with kustomize's hash suffix (conveyor-config-5g2m7hb4tk)."""
    return doc.get("kind") in ("ConfigMap", "Secret") and re.fullmatch(
        re.escape(name) + r"-[a-z0-9]{10}", doc["metadata"]["name"]
    )


def workloads(docs):
    return [d for d in docs if d.get("kind") in ("Deployment", "StatefulSet", "Job")]


def pod_spec(workload):
    return workload["spec"]["template"]["spec"]


def conveyor_command(container):
    """(subcommand, [--flags], {flag: value}) of a container that runs conveyor, or None.

    The image's entrypoint is `conveyor`, so args alone start with the subcommand; a shell
    command (`sh -c "conveyor submit ... && cat ..."`) is split into words."""
    command = container.get("command") or []
    args = container.get("args") or []
    words = None
    if not command and args:
        words = ["conveyor"] + [str(a) for a in args]
    else:
        for text in [str(c) for c in command + args]:
            split = shlex.split(text) if " " in text else [text]
            if "conveyor" in split:
                words = split[split.index("conveyor"):]
                break
        if words is None and command and os.path.basename(str(command[0])) == "conveyor":
            words = [str(w) for w in command + args]
    if not words or len(words) < 2:
        return None
    sub = words[1]
    flags, values = [], {}
    rest = words[2:]
    for i, w in enumerate(rest):
        if w in ("&&", ";", "||", "|"):
            break
        if w.startswith("--"):
            flag, eq, value = w.partition("=")
            flags.append(flag)
            if eq:
                values[flag] = value
            elif i + 1 < len(rest) and not rest[i + 1].startswith("--"):
                values[flag] = rest[i + 1]
    return sub, flags, values


def named_port(container, port):
    if isinstance(port, int):
        return port
    for p in container.get("ports") or []:
        if p.get("name") == port:
            return p["containerPort"]
    return None


def mount_for(container, pod, path):
    """The (mount, volume) that holds `path` in the container, the deepest one."""
    best = None
    for m in container.get("volumeMounts") or []:
        mp = m["mountPath"].rstrip("/")
        if path == mp or path.startswith(mp + "/"):
            if best is None or len(mp) > len(best["mountPath"].rstrip("/")):
                best = m
    if best is None:
        return None, None
    volume = next((v for v in pod.get("volumes") or [] if v["name"] == best["name"]), None)
    return best, volume


# ---- checks ----------------------------------------------------------------------------


class Report:
    def __init__(self, where):
        self.where = where
        self.errors = []

    def error(self, message):
        self.errors.append(f"{self.where}: {message}")

    def expect(self, condition, message):
        if not condition:
            self.error(message)
        return bool(condition)


def check_probes(r, name, container, metrics_port):
    def http(probe, what):
        get = (probe or {}).get("httpGet")
        if not r.expect(get, f"{name}: no {what} httpGet"):
            return None
        port = named_port(container, get.get("port"))
        r.expect(port == metrics_port,
                 f"{name}: {what} on port {get.get('port')!r}, not the metrics port {metrics_port}")
        return get.get("path")

    r.expect(http(container.get("livenessProbe"), "livenessProbe") == "/livez",
             f"{name}: livenessProbe path is not /livez")
    r.expect(http(container.get("readinessProbe"), "readinessProbe") == "/readyz",
             f"{name}: readinessProbe path is not /readyz")
    startup = container.get("startupProbe") or {}
    r.expect(http(startup, "startupProbe") == "/livez", f"{name}: startupProbe path is not /livez")
    budget = startup.get("failureThreshold", 3) * startup.get("periodSeconds", 10)
    r.expect(budget >= MIN_STARTUP_SECONDS,
             f"{name}: startupProbe allows {budget} s for the model load, less than "
             f"{MIN_STARTUP_SECONDS} s")


def prestop_seconds(container):
    exec_ = ((container.get("lifecycle") or {}).get("preStop") or {}).get("exec") or {}
    command = exec_.get("command") or []
    if len(command) == 2 and command[0] == "sleep" and str(command[1]).isdigit():
        return int(command[1])
    return None


def check_security(r, workload):
    pod = pod_spec(workload)
    name = workload["metadata"]["name"]
    pod_sc = pod.get("securityContext") or {}
    for c in (pod.get("initContainers") or []) + pod["containers"]:
        sc = c.get("securityContext") or {}
        non_root = sc.get("runAsNonRoot", pod_sc.get("runAsNonRoot"))
        user = sc.get("runAsUser", pod_sc.get("runAsUser"))
        r.expect(non_root is True, f"{name}/{c['name']}: runAsNonRoot is not true")
        r.expect(user is None or user != 0, f"{name}/{c['name']}: runAsUser is 0")
        r.expect(sc.get("allowPrivilegeEscalation") is False,
                 f"{name}/{c['name']}: allowPrivilegeEscalation is not false")


def check_images(r, docs):
    for w in workloads(docs):
        pod = pod_spec(w)
        for c in (pod.get("initContainers") or []) + pod["containers"]:
            image = c.get("image", "")
            tag = image.rsplit("/", 1)[-1].partition(":")[2]
            r.expect(tag and tag != "latest",
                     f"{w['metadata']['name']}/{c['name']}: image {image!r} has no fixed tag")


def secret_files(readme_text):
    """Secret name -> file names, from the README's `kubectl create secret generic` lines."""
    secrets = {}
    text = readme_text.replace("\\\n", " ")
    for line in text.splitlines():
        words = line.strip().split()
        if words[:4] != ["kubectl", "create", "secret", "generic"] or len(words) < 5:
            continue
        files = set()
        for w in words[5:]:
            if w.startswith("--from-file="):
                value = w[len("--from-file="):]
                key, eq, path = value.partition("=")
                files.add(key if eq else os.path.basename(value))
        secrets[words[4]] = files
    return secrets


def check_path(r, who, container, pod, docs, secrets, path, want, key_file=True):
    """`path` is on a volume of kind `want` (secret, configMap, persistentVolumeClaim); a file
    in a Secret or ConfigMap must be one of its keys."""
    mount, volume = mount_for(container, pod, path)
    if not r.expect(volume, f"{who}: nothing is mounted at {path}"):
        return
    if not r.expect(want in volume, f"{who}: {path} is on volume {volume['name']}, not a {want}"):
        return
    if mount.get("subPath"):
        key = mount["subPath"]
    elif path.rstrip("/") == mount["mountPath"].rstrip("/"):
        key = None  # the whole volume: a directory of keys
    else:
        key = path[len(mount["mountPath"].rstrip("/")) + 1:]
    if want == "persistentVolumeClaim":
        claim = volume[want]["claimName"]
        r.expect(find(docs, "PersistentVolumeClaim", claim),
                 f"{who}: PersistentVolumeClaim {claim} is not defined")
        return
    if want == "configMap":
        cm_name = volume[want]["name"]
        cms = [d for d in docs if d.get("kind") == "ConfigMap" and d["metadata"]["name"] == cm_name]
        if r.expect(cms, f"{who}: ConfigMap {cm_name} is not defined"):
            r.expect(key is None or key in (cms[0].get("data") or {}),
                     f"{who}: ConfigMap {cm_name} has no key {key}")
        return
    secret = volume[want]["secretName"]
    if r.expect(secret in secrets,
                f"{who}: Secret {secret} is not among those deploy/k8s/README.md creates"):
        if key is not None or key_file:
            r.expect(key in secrets[secret],
                     f"{who}: {path}: deploy/k8s/README.md puts no {key} in Secret {secret}")


def env_value(container, name):
    for e in container.get("env") or []:
        if e["name"] == name:
            return e
    return None


def check_overlay(overlay, docs, secrets):
    r = Report(overlay)
    check_images(r, docs)
    # -- the coordinator
    coordinators = find(docs, "Deployment", "conveyor-coordinator")
    services = find(docs, "Service", "conveyor-coordinator")
    if not r.expect(coordinators, "no Deployment conveyor-coordinator"):
        return r.errors
    r.expect(services, "no Service conveyor-coordinator")
    deployment = coordinators[0]
    pod = pod_spec(deployment)
    container = next((c for c in pod["containers"] if c["name"] == "coordinator"), None)
    if not r.expect(container, "conveyor-coordinator has no container `coordinator`"):
        return r.errors
    parsed = conveyor_command(container)
    if not r.expect(parsed and parsed[0] == "coordinator", "the coordinator does not run "
                    "`conveyor coordinator`"):
        return r.errors
    _, _, values = parsed
    r.expect(deployment["spec"].get("replicas", 1) == 1, "more than one coordinator replica")
    r.expect((deployment["spec"].get("strategy") or {}).get("type") == "Recreate",
             "the coordinator's strategy is not Recreate (two would share the journal)")
    wanted = {"--listen": "tcp://0.0.0.0:5555", "--worker-listen": "tcp://0.0.0.0:5556",
              "--metrics-port": str(METRICS_PORT)}
    for flag, value in wanted.items():
        r.expect(values.get(flag) == value, f"coordinator: {flag} is {values.get(flag)!r}, "
                 f"not {value!r}")
    container_ports = {p.get("name"): p["containerPort"] for p in container.get("ports") or []}
    for name, port in (("producers", 5555), ("workers", 5556), ("metrics", METRICS_PORT)):
        r.expect(container_ports.get(name) == port, f"coordinator: no container port {name}={port}")
    if services:
        svc = services[0]
        selector = svc["spec"].get("selector") or {}
        labels = deployment["spec"]["template"]["metadata"].get("labels") or {}
        r.expect(selector and all(labels.get(k) == v for k, v in selector.items()),
                 "Service conveyor-coordinator does not select the coordinator's pods")
        svc_ports = {p["port"]: p for p in svc["spec"].get("ports") or []}
        for port in (5555, 5556, METRICS_PORT):
            p = svc_ports.get(port)
            if r.expect(p, f"Service conveyor-coordinator has no port {port}"):
                r.expect(named_port(container, p.get("targetPort", port)) == port,
                         f"Service conveyor-coordinator port {port} targets {p.get('targetPort')}")
    check_probes(r, "coordinator", container, METRICS_PORT)
    check_drain(r, deployment, container)
    check_security(r, deployment)
    # its config: a ConfigMap with cluster.yaml, the CurveZMQ keys on Secret volumes
    config_path = values.get("--config") or values.get("-c")
    if r.expect(config_path, "coordinator: no --config"):
        check_path(r, "coordinator --config", container, pod, docs, secrets, config_path,
                   "configMap")
        mount, volume = mount_for(container, pod, config_path)
        config = None
        if volume and "configMap" in volume:
            cm = [d for d in docs if d.get("kind") == "ConfigMap"
                  and d["metadata"]["name"] == volume["configMap"]["name"]]
            key = mount.get("subPath") or os.path.basename(config_path)
            if cm and key in (cm[0].get("data") or {}):
                config = yaml.safe_load(cm[0]["data"][key])
        if r.expect(config, "coordinator: its config is not readable from the ConfigMap"):
            cluster = config.get("cluster") or {}
            for key in CURVE_LINES:
                path = cluster.get(key)
                if r.expect(path, f"cluster.yaml: cluster.{key} is not set (CurveZMQ off)"):
                    check_path(r, f"coordinator cluster.{key}", container, pod, docs, secrets,
                               path, "secret", key_file=(key == "server_key"))
            journal = values.get("--journal") or cluster.get("journal")
            if r.expect(journal, "coordinator: no journal directory"):
                check_path(r, "coordinator journal", container, pod, docs, secrets, journal,
                           "persistentVolumeClaim")
                mount, _ = mount_for(container, pod, journal)
                r.expect(mount and not mount.get("readOnly"), "coordinator: journal is read-only")
    check_model_cache(r, "coordinator", container, pod, docs, secrets)
    # -- the workers
    worker_sets = [w for w in workloads(docs) if w["kind"] in ("Deployment", "StatefulSet")
                   and w is not deployment]
    r.expect(worker_sets, "no worker Deployment or StatefulSet")
    for w in worker_sets:
        check_worker(r, overlay, w, docs, secrets, services)
    if overlay == "multi-node":
        sets = find(docs, "StatefulSet")
        if r.expect(sets, "workers are not a StatefulSet"):
            s = sets[0]
            r.expect(s["spec"].get("replicas") == 3, "the StatefulSet does not have 3 replicas")
            governing = find(docs, "Service", s["spec"].get("serviceName", "-"))
            if r.expect(governing, f"StatefulSet serviceName {s['spec'].get('serviceName')!r} "
                        "names no Service"):
                r.expect(governing[0]["spec"].get("clusterIP") == "None",
                         "the StatefulSet's Service is not headless (clusterIP: None)")
    if overlay in GPU_OVERLAYS:
        check_service_monitor(r, docs)
    return r.errors


def check_drain(r, workload, container):
    name = workload["metadata"]["name"]
    pause = prestop_seconds(container)
    r.expect(pause is not None, f"{name}: no preStop `sleep N` hook")
    grace = pod_spec(workload).get("terminationGracePeriodSeconds", 30)
    r.expect(grace >= (pause or 0) + 60,
             f"{name}: terminationGracePeriodSeconds {grace} leaves under 60 s to drain "
             "after preStop")


def check_model_cache(r, who, container, pod, docs, secrets):
    home = env_value(container, "CONVEYOR_HOME")
    if r.expect(home and home.get("value"), f"{who}: CONVEYOR_HOME is not set"):
        check_path(r, f"{who} CONVEYOR_HOME", container, pod, docs, secrets, home["value"],
                   "persistentVolumeClaim")


def check_worker(r, overlay, workload, docs, secrets, coordinator_services):
    pod = pod_spec(workload)
    name = workload["metadata"]["name"]
    containers = [c for c in pod["containers"] if (conveyor_command(c) or ("",))[0] == "worker"]
    if not r.expect(containers, f"{name}: no container runs `conveyor worker`"):
        return
    container = containers[0]
    _, flags, values = conveyor_command(container)
    endpoint = values.get("--coordinator", "")
    m = re.fullmatch(r"tcp://([a-z0-9-]+):(\d+)", endpoint)
    r.expect(m and m.group(1) == "conveyor-coordinator" and m.group(2) == "5556",
             f"{name}: --coordinator {endpoint!r} is not the coordinator Service's worker port")
    metrics = values.get("--metrics-port")
    r.expect(metrics == str(METRICS_PORT), f"{name}: --metrics-port is {metrics!r}")
    check_probes(r, name, container, METRICS_PORT)
    check_drain(r, workload, container)
    check_security(r, workload)
    for flag in ("--client-key", "--server-key"):
        if r.expect(values.get(flag), f"{name}: no {flag} (CurveZMQ)"):
            check_path(r, f"{name} {flag}", container, pod, docs, secrets, values[flag], "secret")
    check_model_cache(r, name, container, pod, docs, secrets)
    limits = (container.get("resources") or {}).get("limits") or {}
    requests = (container.get("resources") or {}).get("requests") or {}
    device = values.get("--device", "cpu")
    if overlay in GPU_OVERLAYS:
        r.expect(str(limits.get("nvidia.com/gpu")) == "1",
                 f"{name}: limits has no nvidia.com/gpu: 1")
        r.expect(re.fullmatch(r"cuda:\d+", device), f"{name}: --device {device!r} is not cuda:N")
    else:
        r.expect("nvidia.com/gpu" not in limits and "nvidia.com/gpu" not in requests,
                 f"{name}: asks for a GPU")
        r.expect(device == "cpu", f"{name}: --device {device!r} is not cpu")
        r.expect("--memory" in flags, f"{name}: no --memory (the default is 80% of the node)")
    if workload["kind"] == "StatefulSet":
        r.expect(values.get("--name") == "$(POD_NAME)", f"{name}: --name is not $(POD_NAME)")
        env = env_value(container, "POD_NAME") or {}
        field = ((env.get("valueFrom") or {}).get("fieldRef") or {}).get("fieldPath")
        r.expect(field == "metadata.name", f"{name}: POD_NAME is not the downward API's "
                 "metadata.name")


def check_service_monitor(r, docs):
    monitors = find(docs, "ServiceMonitor")
    if not r.expect(monitors, "no ServiceMonitor"):
        return
    sm = monitors[0]
    r.expect(sm.get("apiVersion") == "monitoring.coreos.com/v1",
             f"ServiceMonitor apiVersion is {sm.get('apiVersion')}")
    selector = (sm["spec"].get("selector") or {}).get("matchLabels") or {}
    endpoints = sm["spec"].get("endpoints") or []
    ports = {e.get("port") for e in endpoints}
    for svc in find(docs, "Service", "conveyor-coordinator"):
        labels = svc["metadata"].get("labels") or {}
        r.expect(selector and all(labels.get(k) == v for k, v in selector.items()),
                 "the ServiceMonitor does not select Service conveyor-coordinator")
        svc_ports = {p.get("name"): p["port"] for p in svc["spec"].get("ports") or []}
        r.expect(any(svc_ports.get(p) == METRICS_PORT for p in ports),
                 f"the ServiceMonitor scrapes no port that is {METRICS_PORT} on the coordinator")
    r.expect(all(e.get("path", "/metrics") == "/metrics" for e in endpoints),
             "the ServiceMonitor scrapes another path than /metrics")


def check_example(docs, secrets):
    r = Report("examples/submit-job")
    check_images(r, docs)
    jobs = find(docs, "Job")
    if not r.expect(jobs, "no Job"):
        return r.errors
    job = jobs[0]
    pod = pod_spec(job)
    check_security(r, job)
    container = next((c for c in pod["containers"]
                      if (conveyor_command(c) or ("",))[0] == "submit"), None)
    if not r.expect(container, "no container runs `conveyor submit`"):
        return r.errors
    _, _, values = conveyor_command(container)
    r.expect(values.get("--coordinator") == "tcp://conveyor-coordinator:5555",
             f"--coordinator is {values.get('--coordinator')!r}, not the coordinator Service's "
             "producer port")
    for flag in ("--server-key", "--client-key"):
        if r.expect(values.get(flag), f"no {flag} (CurveZMQ)"):
            check_path(r, f"submit {flag}", container, pod, docs, secrets, values[flag], "secret")
    source = values.get("--input") or values.get("-i")
    if r.expect(source, "no --input"):
        check_path(r, "submit --input", container, pod, docs, secrets, source, "configMap")
        mount, volume = mount_for(container, pod, source)
        if volume and "configMap" in volume:
            cm = [d for d in docs if d.get("kind") == "ConfigMap"
                  and d["metadata"]["name"] == volume["configMap"]["name"]]
            key = mount.get("subPath") or os.path.basename(source)
            text = (cm[0].get("data") or {}).get(key, "") if cm else ""
            lines = [ln for ln in text.splitlines() if ln.strip()]
            r.expect(lines, "the batch file is empty")
            for i, line in enumerate(lines, 1):
                try:
                    request = json.loads(line)
                except ValueError as e:
                    r.error(f"batch line {i} is not JSON: {e}")
                    continue
                r.expect(all(k in request for k in ("custom_id", "method", "url", "body")),
                         f"batch line {i} is not an OpenAI Batch line")
    output = values.get("--output") or values.get("-o")
    if r.expect(output, "no --output"):
        mount, _ = mount_for(container, pod, output)
        r.expect(mount and not mount.get("readOnly"), f"--output {output} is not writable")
    return r.errors


_HELP = {}


def help_text(binary, sub):
    """(ok, `conveyor SUB --help` output), run once per subcommand."""
    if (binary, sub) not in _HELP:
        try:
            run = subprocess.run([binary, sub, "--help"], capture_output=True, text=True,
                                 timeout=60)
            _HELP[binary, sub] = (run.returncode == 0, run.stdout if run.returncode == 0
                                  else run.stderr)
        except OSError as e:
            _HELP[binary, sub] = (False, str(e))
    return _HELP[binary, sub]


def check_flags(all_docs, binary):
    """Every --flag of a conveyor command in the manifests is one `conveyor SUB --help` lists."""
    errors = []
    used = {}
    for where, docs in all_docs.items():
        for w in workloads(docs):
            pod = pod_spec(w)
            for c in (pod.get("initContainers") or []) + pod["containers"]:
                parsed = conveyor_command(c)
                if parsed:
                    used.setdefault(parsed[0], set()).update(
                        (f, f"{where} {w['metadata']['name']}/{c['name']}") for f in parsed[1])
    if not binary:
        return errors, used
    for sub, flags in sorted(used.items()):
        ok, text = help_text(binary, sub)
        if not ok:
            errors.append(f"flags: `conveyor {sub} --help` failed: {text.strip()[:200]}")
            continue
        for flag, who in sorted(flags):
            if not re.search(r"(?<![\w-])" + re.escape(flag) + r"(?![\w-])", text):
                errors.append(f"flags: {who}: `conveyor {sub}` has no option {flag}")
    return errors, used


def cluster_yaml_copy(original):
    """config/cluster.yaml with its three CurveZMQ lines enabled: the base's copy."""
    out = original
    for key in CURVE_LINES:
        out = re.sub(r"(?m)^  # " + key + ":", "  " + key + ":", out)
    return out


def check_copies(root):
    errors = []

    def read(path):
        with open(os.path.join(root, path), encoding="utf-8") as f:
            return f.read()

    base = "deploy/k8s/base/"
    if read(base + "cluster.yaml") != cluster_yaml_copy(read("config/cluster.yaml")):
        errors.append(f"{base}cluster.yaml is no longer config/cluster.yaml with the CurveZMQ "
                      f"lines enabled: copy it again (see {base}kustomization.yaml)")
    if read(base + "install-model.sh") != read("scripts/install-model.sh"):
        errors.append(f"{base}install-model.sh differs from scripts/install-model.sh: "
                      "copy it again")
    return errors


def check_dockerfile(text, dockerignore):
    errors = []
    lines = []
    for raw in text.replace("\\\n", " ").splitlines():
        line = raw.strip()
        if line and not line.startswith("#"):
            lines.append(line)
    froms = [ln for ln in lines if ln.upper().startswith("FROM ")]
    if len(froms) < 2:
        errors.append(f"Dockerfile: {len(froms)} FROM line(s); a multi-stage build has 2 or more")
    first_from = next((i for i, ln in enumerate(lines) if ln.upper().startswith("FROM ")), 0)
    args = {}
    for ln in lines[:first_from]:
        if ln.upper().startswith("ARG "):
            name, _, default = ln[4:].strip().partition("=")
            args[name.strip()] = default.strip().strip('"')
    for name in ("BUILD_IMAGE", "RUNTIME_IMAGE"):
        if name not in args:
            errors.append(f"Dockerfile: no ARG {name} before the first FROM")
        elif not any("${" + name + "}" in f or "$" + name + " " in f + " " for f in froms):
            errors.append(f"Dockerfile: no FROM uses ${{{name}}}")
    images = list(args.values()) + [f.split()[1] for f in froms if "$" not in f.split()[1]]
    for image in images:
        if not image or image.startswith("$"):
            continue
        tag = image.rsplit("/", 1)[-1].partition(":")[2]
        if not tag or tag == "latest":
            errors.append(f"Dockerfile: image {image!r} has no fixed tag")
    if re.search(r":latest\b", text):
        errors.append("Dockerfile: a `latest` tag")
    last_from = max((i for i, ln in enumerate(lines) if ln.upper().startswith("FROM ")), default=0)
    users = [ln.split()[1] for ln in lines[last_from:] if ln.upper().startswith("USER ")]
    if not users:
        errors.append("Dockerfile: the runtime stage sets no USER")
    elif users[-1].split(":")[0] in ("root", "0"):
        errors.append(f"Dockerfile: the runtime stage runs as {users[-1]}")
    entry = [ln for ln in lines[last_from:] if ln.upper().startswith("ENTRYPOINT ")]
    if not entry or json.loads(entry[-1].split(None, 1)[1]) != ["conveyor"]:
        errors.append('Dockerfile: the entrypoint is not ["conveyor"]')
    ignored = {ln.strip() for ln in dockerignore.splitlines()}
    for pattern in ("build*/", "gpu-pack/", "gpu-models/"):
        if pattern not in ignored:
            errors.append(f".dockerignore: {pattern} is not excluded")
    return errors


def check_all(root, rendered, secrets, binary):
    errors = []
    for overlay in OVERLAYS:
        errors += check_overlay(overlay, rendered[overlay], secrets)
    errors += check_example(rendered[EXAMPLE], secrets)
    flag_errors, _ = check_flags(rendered, binary)
    return errors + flag_errors


# ---- self test: each breakage must be reported -----------------------------------------


def container_of(docs, kind, name, container):
    for d in find(docs, kind, name):
        for c in pod_spec(d)["containers"]:
            if c["name"] == container:
                return c
    raise KeyError(f"{kind} {name}/{container}")


def breakages(binary):
    def worker(docs, overlay):
        kind = "StatefulSet" if overlay == "multi-node" else "Deployment"
        return container_of(docs, kind, "conveyor-worker", "worker")

    def coordinator(docs):
        return container_of(docs, "Deployment", "conveyor-coordinator", "coordinator")

    def replace_volume(docs, name, volume):
        volumes = pod_spec(find(docs, "Deployment", "conveyor-coordinator")[0])["volumes"]
        volumes[:] = [volume if v["name"] == name else v for v in volumes]

    def edit_shell(docs, change):
        command = pod_spec(find(docs, "Job")[0])["containers"][0]["command"]
        command[-1] = change(command[-1])

    def set_config(docs, text):
        for cm in find(docs, "ConfigMap", "conveyor-config"):
            cm["data"]["cluster.yaml"] = text

    out = [
        ("single-gpu", "no GPU limit", "nvidia.com/gpu",
         lambda d: worker(d, "single-gpu")["resources"]["limits"].pop("nvidia.com/gpu")),
        ("multi-node", "no GPU limit", "nvidia.com/gpu",
         lambda d: worker(d, "multi-node")["resources"]["limits"].pop("nvidia.com/gpu")),
        ("cpu-demo", "a GPU asked for", "asks for a GPU",
         lambda d: worker(d, "cpu-demo")["resources"].setdefault("limits", {})
         .update({"nvidia.com/gpu": 1})),
        ("single-gpu", "readiness on /healthz", "readinessProbe path",
         lambda d: coordinator(d)["readinessProbe"]["httpGet"].update(path="/healthz")),
        ("cpu-demo", "liveness on another port", "livenessProbe on port",
         lambda d: worker(d, "cpu-demo")["livenessProbe"]["httpGet"].update(port=8080)),
        ("single-gpu", "a short startupProbe", "startupProbe allows",
         lambda d: coordinator(d)["startupProbe"].update(failureThreshold=10)),
        ("multi-node", "no preStop", "preStop",
         lambda d: worker(d, "multi-node").pop("lifecycle")),
        ("single-gpu", "a short grace period", "terminationGracePeriodSeconds",
         lambda d: pod_spec(find(d, "Deployment", "conveyor-coordinator")[0])
         .update(terminationGracePeriodSeconds=30)),
        ("multi-node", "a Service with a cluster IP", "headless",
         lambda d: find(d, "Service", "conveyor-worker")[0]["spec"].pop("clusterIP")),
        ("multi-node", "--name not from the pod", "POD_NAME",
         lambda d: worker(d, "multi-node")["env"].pop(0)
         if worker(d, "multi-node")["env"][0]["name"] == "POD_NAME" else None),
        ("cpu-demo", "may run as root", "runAsNonRoot",
         lambda d: pod_spec(find(d, "Deployment", "conveyor-coordinator")[0])["securityContext"]
         .pop("runAsNonRoot")),
        ("single-gpu", "no ServiceMonitor", "no ServiceMonitor",
         lambda d: d.remove(find(d, "ServiceMonitor")[0])),
        ("single-gpu", "worker keys not mounted", "nothing is mounted",
         lambda d: worker(d, "single-gpu").update(volumeMounts=[
             m for m in worker(d, "single-gpu")["volumeMounts"] if m["name"] != "worker-key"])),
        ("single-gpu", "CurveZMQ off in the config", "cluster.worker_keys is not set",
         lambda d: set_config(d, "model: m\ncluster:\n  server_key: /etc/conveyor/keys/"
                              "coordinator.key\n  producer_keys: /etc/conveyor/keys/producers\n")),
        ("cpu-demo", "the journal on an emptyDir", "not a persistentVolumeClaim",
         lambda d: replace_volume(d, "journal", {"name": "journal", "emptyDir": {}})),
        ("cpu-demo", "an untagged image", "no fixed tag",
         lambda d: coordinator(d).update(image="conveyor")),
        (EXAMPLE, "submit to the worker port", "--coordinator",
         lambda d: edit_shell(d, lambda cmd: cmd.replace(":5555", ":5556"))),
    ]
    if binary:
        out.append(("single-gpu", "an unknown flag", "has no option --no-such-flag",
                    lambda d: coordinator(d)["args"].append("--no-such-flag")))
        out.append((EXAMPLE, "an unknown submit flag", "has no option --retries",
                    lambda d: edit_shell(d, lambda cmd: cmd.replace(" &&", " --retries 3 &&"))))
    return out


DOCKERFILE_BREAKAGES = [
    ("one stage", "multi-stage", lambda t: re.sub(r"(?m)^FROM \$\{RUNTIME_IMAGE\}.*$", "", t)),
    ("runs as root", "runs as root", lambda t: re.sub(r"(?m)^USER .*$", "USER root", t)),
    ("a latest tag", "latest", lambda t: t.replace("debian:12-slim", "debian:latest")),
    ("no image ARG", "no ARG RUNTIME_IMAGE", lambda t: re.sub(r"(?m)^ARG RUNTIME_IMAGE.*$", "", t)),
]


def self_test(root, rendered, secrets, binary, dockerfile, dockerignore):
    errors = []
    for where, what, expected, breakage in breakages(binary):
        broken = copy.deepcopy(rendered)
        breakage(broken[where])
        found = check_all(root, broken, secrets, binary)
        if not any(expected in e for e in found):
            errors.append(f"self-test: {where} with {what}: not reported (wanted '{expected}'; "
                          f"got {found[:3]})")
    for what, expected, breakage in DOCKERFILE_BREAKAGES:
        found = check_dockerfile(breakage(dockerfile), dockerignore)
        if not any(expected in e for e in found):
            errors.append(f"self-test: Dockerfile with {what}: not reported (got {found[:3]})")
    found = check_dockerfile(dockerfile, "gpu-pack/\n")
    if not any("build*/" in e for e in found):
        errors.append("self-test: .dockerignore without build*/: not reported")
    changed = cluster_yaml_copy("cluster:\n  # server_key: k\n")
    if changed != "cluster:\n  server_key: k\n":
        errors.append("self-test: the cluster.yaml copy rule does not enable the key lines")
    return errors


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--root", required=True)
    ap.add_argument("--rendered", required=True)
    ap.add_argument("--binary", default="")
    ap.add_argument("--self-test", action="store_true")
    a = ap.parse_args()

    rendered = {name: load_rendered(a.rendered, name) for name in OVERLAYS + (EXAMPLE,)}
    with open(os.path.join(a.root, "deploy/k8s/README.md"), encoding="utf-8") as f:
        secrets = secret_files(f.read())
    with open(os.path.join(a.root, "Dockerfile"), encoding="utf-8") as f:
        dockerfile = f.read()
    with open(os.path.join(a.root, ".dockerignore"), encoding="utf-8") as f:
        dockerignore = f.read()

    errors = check_all(a.root, rendered, secrets, a.binary)
    errors += check_copies(a.root)
    errors += check_dockerfile(dockerfile, dockerignore)
    _, used = check_flags(rendered, a.binary)
    if a.self_test and not errors:
        errors += self_test(a.root, rendered, secrets, a.binary, dockerfile, dockerignore)
    for e in errors:
        print(f"FAIL {e}")
    if errors:
        return 1
    counted = sum(len({f for f, _ in flags}) for flags in used.values())
    how = f"checked against {a.binary}" if a.binary else "not checked: no binary"
    print(f"manifests ok: {', '.join(OVERLAYS)}, examples/{EXAMPLE}; "
          f"{counted} conveyor flags of {len(used)} subcommands ({how})")
    if a.self_test:
        print(f"self-test ok: {len(breakages(a.binary)) + len(DOCKERFILE_BREAKAGES) + 1} "
              "breakages reported")
    return 0


if __name__ == "__main__":
    sys.exit(main())
