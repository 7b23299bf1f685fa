#!/usr/bin/python3
"""Turns one container of rendered Kubernetes manifests into `podman run` args.

    k8s_podman.py RENDERED.yaml KIND/NAME --pod-name=NAME --image=IMAGE
        [--volume-root=DIR] [--rewrite=FROM=TO]... > ARGS

RENDERED.yaml is `kubectl kustomize` output; KIND/NAME picks a Deployment,
StatefulSet or Job, whose first container is translated. ARGS gets the
arguments after `podman run`, NUL-separated: the options, then IMAGE, then
the container's args (its command becomes the entrypoint). Mapped as the
kubelet would:

  command, args   --entrypoint and the args, with $(VAR) expanded from the
                  container's env ($$ stays a literal $)
  env, envFrom    values, fieldRef metadata.name (the pod's name) and
                  metadata.namespace; ConfigMaps and Secrets from RENDERED
  securityContext runAsUser/runAsGroup -> --user, fsGroup -> --group-add and
                  the group of the volumes' directories, readOnlyRootFilesystem
                  -> --read-only, allowPrivilegeEscalation: false ->
                  no-new-privileges, capabilities, seccompProfile
                  RuntimeDefault (podman's default profile); runAsNonRoot is
                  checked against runAsUser
  resources       limits -> --cpus and --memory
  volumes         a claim (volumeClaimTemplates or persistentVolumeClaim) ->
                  a directory under --volume-root owned by fsGroup; emptyDir
                  -> tmpfs of its sizeLimit; an optional Secret that RENDERED
                  does not hold -> an empty read-only tmpfs, as the kubelet
                  mounts it
  workingDir      --workdir
  grace           terminationGracePeriodSeconds -> --stop-timeout

--rewrite replaces FROM by TO in every arg and env value (a Service's name
by a loopback address, say); a rewrite that matches nothing is an error, so
a change in the manifests cannot slip past it. Anything else in the
container that changes how it runs (probes excepted: they are printed as
not run) is an error naming the field: nothing is dropped silently.
"""

import argparse
import base64
import os
import re
import sys

import yaml


class Unsupported(Exception):
    pass


def find(docs, kind, name):
    for doc in docs:
        if doc.get("kind") == kind and doc.get("metadata", {}).get("name") == name:
            return doc
    return None


def quantity_bytes(text):
    units = {"Ki": 1 << 10, "Mi": 1 << 20, "Gi": 1 << 30, "Ti": 1 << 40,
             "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12}
    m = re.fullmatch(r"([0-9.]+)([A-Za-z]*)", str(text))
    if not m or (m.group(2) and m.group(2) not in units):
        raise Unsupported(f"quantity {text!r}")
    return int(float(m.group(1)) * units.get(m.group(2), 1))


def cpus(text):
    text = str(text)
    if text.endswith("m"):
        return str(int(text[:-1]) / 1000)
    return str(float(text))


def expand(value, env):
    """Kubernetes' $(VAR) expansion: known names are replaced, $$ is $."""
    def sub(m):
        if m.group(0) == "$$":
            return "$"
        return env.get(m.group(1), m.group(0))
    return re.sub(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_]*)\)", sub, value)


class Translator:
    def __init__(self, docs, opts):
        self.docs = docs
        self.opts = opts
        self.rewrites = [r.split("=", 1) for r in opts.rewrite]
        self.used = set()
        self.notes = []

    def rewrite(self, text):
        for i, (old, new) in enumerate(self.rewrites):
            if old in text:
                text = text.replace(old, new)
                self.used.add(i)
        return text

    def data_of(self, kind, name, optional):
        doc = find(self.docs, kind, name)
        if doc is None:
            if optional:
                return None
            raise Unsupported(f"{kind} {name} is not in the rendered manifests")
        data = dict(doc.get("data") or {})
        if kind == "Secret":
            data = {k: base64.b64decode(v).decode() for k, v in data.items()}
            data.update(doc.get("stringData") or {})
        return data

    def env(self, c, namespace):
        env = {}
        for src in c.pop("envFrom", []):
            prefix = src.pop("prefix", "")
            if "configMapRef" in src:
                ref, kind = src.pop("configMapRef"), "ConfigMap"
            elif "secretRef" in src:
                ref, kind = src.pop("secretRef"), "Secret"
            else:
                raise Unsupported(f"envFrom {src}")
            data = self.data_of(kind, ref["name"], ref.get("optional", False))
            for k, v in (data or {}).items():
                env[prefix + k] = v
        for item in c.pop("env", []):
            name = item["name"]
            if "value" in item:
                env[name] = expand(str(item["value"]), env)
                continue
            source = item.get("valueFrom", {})
            if "fieldRef" in source:
                path = source["fieldRef"]["fieldPath"]
                fields = {"metadata.name": self.opts.pod_name,
                          "metadata.namespace": namespace}
                if path not in fields:
                    raise Unsupported(f"env {name}: fieldRef {path}")
                env[name] = fields[path]
            elif "configMapKeyRef" in source or "secretKeyRef" in source:
                kind = "ConfigMap" if "configMapKeyRef" in source else "Secret"
                ref = source.get("configMapKeyRef") or source["secretKeyRef"]
                data = self.data_of(kind, ref["name"], ref.get("optional", False))
                if data is not None and ref["key"] in data:
                    env[name] = data[ref["key"]]
                elif not ref.get("optional", False):
                    raise Unsupported(f"env {name}: no key {ref['key']}")
            else:
                raise Unsupported(f"env {name}: {source}")
        return {k: self.rewrite(v) for k, v in env.items()}

    def security(self, pod_sc, c_sc, out):
        sc = dict(pod_sc)
        sc.update(c_sc)
        user = sc.pop("runAsUser", None)
        group = sc.pop("runAsGroup", None)
        if sc.pop("runAsNonRoot", False) and (user is None or int(user) == 0):
            raise Unsupported("runAsNonRoot without a non-zero runAsUser")
        if user is not None:
            out += ["--user", f"{user}:{group}" if group is not None else str(user)]
        fs_group = sc.pop("fsGroup", None)
        sc.pop("fsGroupChangePolicy", None)  # The directories start empty.
        if fs_group is not None:
            out += ["--group-add", str(fs_group)]
        if sc.pop("readOnlyRootFilesystem", False):
            # Only the volumes are writable: no tmpfs of podman's own.
            out += ["--read-only", "--read-only-tmpfs=false"]
        if sc.pop("allowPrivilegeEscalation", True) is False:
            out += ["--security-opt", "no-new-privileges"]
        caps = sc.pop("capabilities", {})
        for cap in caps.pop("drop", []):
            out += ["--cap-drop", cap]
        for cap in caps.pop("add", []):
            out += ["--cap-add", cap]
        if caps:
            raise Unsupported(f"capabilities {caps}")
        seccomp = sc.pop("seccompProfile", {"type": "RuntimeDefault"})
        if seccomp.get("type") == "Unconfined":
            out += ["--security-opt", "seccomp=unconfined"]
        elif seccomp.get("type") != "RuntimeDefault":
            raise Unsupported(f"seccompProfile {seccomp}")
        if sc.pop("privileged", False):
            raise Unsupported("privileged")
        if sc:
            raise Unsupported(f"securityContext {sc}")
        return fs_group

    def volumes(self, workload, pod, c, fs_group, out):
        claims = {t["metadata"]["name"] for t in
                  workload["spec"].get("volumeClaimTemplates", [])}
        volumes = {v["name"]: v for v in pod.get("volumes", [])}
        for mount in c.pop("volumeMounts", []):
            name, path = mount["name"], mount["mountPath"]
            ro = mount.get("readOnly", False)
            extra = set(mount) - {"name", "mountPath", "readOnly"}
            if extra:
                raise Unsupported(f"volumeMount {name}: {sorted(extra)}")
            volume = volumes.get(name, {"persistentVolumeClaim": {}}
                                 if name in claims else None)
            if volume is None:
                raise Unsupported(f"volumeMount {name}: no such volume")
            if "persistentVolumeClaim" in volume:
                if not self.opts.volume_root:
                    raise Unsupported(f"volume {name}: needs --volume-root")
                directory = os.path.join(self.opts.volume_root, name)
                os.makedirs(directory, exist_ok=True)
                if fs_group is not None:
                    os.chown(directory, 0, int(fs_group))
                    os.chmod(directory, 0o2770)
                out += ["--volume", f"{directory}:{path}:{'ro' if ro else 'rw'}"]
            elif "emptyDir" in volume:
                size = volume["emptyDir"].get("sizeLimit")
                opts = ["rw", "mode=1777"]
                if size:
                    opts.append(f"size={quantity_bytes(size)}")
                out += ["--tmpfs", f"{path}:{','.join(opts)}"]
            elif "secret" in volume:
                secret = volume["secret"]
                if find(self.docs, "Secret", secret["secretName"]) is not None:
                    raise Unsupported(f"volume {name}: a Secret's files")
                if not secret.get("optional", False):
                    raise Unsupported(
                        f"volume {name}: Secret {secret['secretName']} missing")
                out += ["--tmpfs", f"{path}:ro,size=4k"]
                self.notes.append(f"volume {name}: optional Secret "
                                  f"{secret['secretName']} absent: empty")
            else:
                raise Unsupported(f"volume {name}: {sorted(volume)}")

    def translate(self, kind, name):
        workload = find(self.docs, kind, name)
        if workload is None:
            raise Unsupported(f"{kind}/{name} is not in the rendered manifests")
        namespace = workload.get("metadata", {}).get("namespace", "default")
        pod = dict(workload["spec"]["template"]["spec"])
        c = dict(pod["containers"][0])
        out = ["--name", self.opts.pod_name]
        if "terminationGracePeriodSeconds" in pod:
            out += ["--stop-timeout", str(pod["terminationGracePeriodSeconds"])]
        env = self.env(c, namespace)
        for k, v in env.items():
            out += ["--env", f"{k}={v}"]
        fs_group = self.security(pod.get("securityContext", {}),
                                 c.pop("securityContext", {}), out)
        self.volumes(workload, pod, c, fs_group, out)
        if "workingDir" in c:
            out += ["--workdir", c.pop("workingDir")]
        limits = c.pop("resources", {}).get("limits", {})
        if "cpu" in limits:
            out += ["--cpus", cpus(limits["cpu"])]
        if "memory" in limits:
            out += ["--memory", str(quantity_bytes(limits["memory"]))]
        command = [self.rewrite(expand(a, env)) for a in c.pop("command", [])]
        args = [self.rewrite(expand(a, env)) for a in c.pop("args", [])]
        if command:
            out += ["--entrypoint", command[0]]
            args = command[1:] + args
        image = c.pop("image")
        if image.split(":")[0] != self.opts.image.split(":")[0].split("/")[-1]:
            raise Unsupported(f"image {image} is not {self.opts.image}")
        if c.pop("imagePullPolicy", "IfNotPresent") != "Always":
            out += ["--pull", "never"]
        for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
            if probe in c:
                self.notes.append(f"{probe}: not run by podman")
                c.pop(probe)
        c.pop("name")
        c.pop("ports", None)  # The host's network: nothing to publish.
        if c:
            raise Unsupported(f"container fields {sorted(c)}")
        unused = [self.rewrites[i][0] for i in range(len(self.rewrites))
                  if i not in self.used]
        if unused:
            raise Unsupported(f"--rewrite matched nothing: {unused}")
        return out + [self.opts.image] + args


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("rendered")
    parser.add_argument("workload", help="KIND/NAME")
    parser.add_argument("--pod-name", required=True)
    parser.add_argument("--image", required=True)
    parser.add_argument("--volume-root")
    parser.add_argument("--rewrite", action="append", default=[])
    opts = parser.parse_args()
    with open(opts.rendered) as f:
        docs = [d for d in yaml.safe_load_all(f) if d]
    kind, name = opts.workload.split("/", 1)
    translator = Translator(docs, opts)
    try:
        args = translator.translate(kind, name)
    except Unsupported as e:
        print(f"k8s_podman: {opts.workload}: {e}", file=sys.stderr)
        return 1
    for note in translator.notes:
        print(f"k8s_podman: {opts.workload}: {note}", file=sys.stderr)
    sys.stdout.write("".join(a + "\0" for a in args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
