"""check_manifests.py accepts the real manifests and catches each kind of mistake it exists for.

Each case breaks one thing in a copy of k8s-manifests/ and expects the matching error.
Run by tests/k8s/validate.sh: python -m unittest discover -s tests/k8s -p 'test_*.py'
"""

from __future__ import annotations

import shutil
import sys
import tempfile
import unittest
from pathlib import Path
from typing import Callable

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
import check_manifests  # noqa: E402

ROOT = check_manifests.ROOT
MANIFESTS = ROOT / "k8s-manifests"


def load_all(p: Path) -> list[dict]:
    return [d for d in yaml.safe_load_all(p.read_text()) if d is not None]


def dump_all(p: Path, docs: list[dict]) -> None:
    p.write_text(yaml.safe_dump_all(docs, sort_keys=False))


def container(docs: list[dict]) -> dict:
    return docs[0]["spec"]["template"]["spec"]["containers"][0]


def env(c: dict, name: str) -> dict:
    return next(e for e in c["env"] if e["name"] == name)


class CheckManifestsTest(unittest.TestCase):
    def run_with(self, file: str, mutate: Callable[[list[dict]], None]) -> list[str]:
        with tempfile.TemporaryDirectory() as tmp:
            d = Path(tmp) / "k8s-manifests"
            shutil.copytree(MANIFESTS, d)
            if file:
                docs = load_all(d / file)
                mutate(docs)
                dump_all(d / file, docs)
            else:
                mutate([d])  # type: ignore[list-item]
            return check_manifests.check(d, ROOT)

    def assert_caught(self, needle: str, file: str, mutate: Callable[[list[dict]], None]) -> None:
        errors = self.run_with(file, mutate)
        self.assertTrue(any(needle in e for e in errors), f"expected {needle!r} in {errors}")

    def test_the_real_manifests_pass(self) -> None:
        self.assertEqual(check_manifests.check(MANIFESTS, ROOT), [])

    def test_a_reformatted_copy_passes(self) -> None:
        self.assertEqual(self.run_with("spark-worker-controller.yaml", lambda docs: None), [])

    def test_selector_not_matching_the_template(self) -> None:
        def m(docs):
            docs[0]["spec"]["template"]["metadata"]["labels"] = {"component": "spark-wroker"}
        self.assert_caught("does not match the template labels", "spark-worker-controller.yaml", m)

    def test_service_selecting_no_pod(self) -> None:
        def m(docs):
            docs[1]["spec"]["selector"] = {"component": "spark-mastr"}
        self.assert_caught("matches no pod template", "spark-master-service.yaml", m)

    def test_target_port_that_no_container_declares(self) -> None:
        def m(docs):
            docs[1]["spec"]["ports"][0]["targetPort"] = "rpc"
        self.assert_caught("targetPort 'rpc'", "spark-master-service.yaml", m)

    def test_node_port_out_of_range(self) -> None:
        def m(docs):
            docs[0]["spec"]["ports"][0]["nodePort"] = 29080
        self.assert_caught("outside 30000-32767", "spark-master-service.yaml", m)

    def test_probe_on_an_undeclared_port(self) -> None:
        def m(docs):
            container(docs)["readinessProbe"]["httpGet"]["port"] = 8088
        self.assert_caught("readinessProbe port 8088", "spark-worker-controller.yaml", m)

    def test_env_var_no_binary_reads(self) -> None:
        def m(docs):
            env(container(docs), "SPARK_WORKER_CORES")["name"] = "SPARK_WORKER_CORE"
        self.assert_caught("env SPARK_WORKER_CORE is not read", "spark-worker-controller.yaml", m)

    def test_worker_variable_on_the_master(self) -> None:
        def m(docs):
            container(docs)["env"].append({"name": "SPARK_WORKER_CORES", "value": "2"})
        self.assert_caught("env SPARK_WORKER_CORES is not read by flint-master", "spark-master-controller.yaml", m)

    def test_port_variable_of_the_other_daemon(self) -> None:
        def m(docs):
            container(docs)["env"].append({"name": "SPARK_MASTER_PORT", "value": "7077"})
        self.assert_caught("env SPARK_MASTER_PORT is not read by flint-worker", "spark-worker-controller.yaml", m)

    def test_memory_without_a_unit(self) -> None:
        def m(docs):
            container(docs)["env"].append({"name": "SPARK_WORKER_MEMORY", "value": "2048"})
        self.assert_caught("needs a unit suffix", "spark-worker-controller.yaml", m)

    def test_downward_api_on_an_unset_limit(self) -> None:
        def m(docs):
            del container(docs)["resources"]["limits"]["cpu"]
        self.assert_caught("limits.cpu is not set", "spark-worker-controller.yaml", m)

    def test_fractional_cpu_limit_for_the_cores(self) -> None:
        def m(docs):
            container(docs)["resources"]["limits"]["cpu"] = "1500m"
        self.assert_caught("use whole CPUs", "spark-worker-controller.yaml", m)

    def test_divisor_kubernetes_refuses(self) -> None:
        def m(docs):
            env(container(docs), "FLINT_WORKER_MEMORY_LIMIT_MB")["valueFrom"]["resourceFieldRef"]["divisor"] = "1280Ki"
        self.assert_caught("divisor '1280Ki'", "spark-worker-controller.yaml", m)

    def test_writable_root_filesystem(self) -> None:
        def m(docs):
            container(docs)["securityContext"]["readOnlyRootFilesystem"] = False
        self.assert_caught("readOnlyRootFilesystem", "spark-master-controller.yaml", m)

    def test_empty_dir_without_size_limit(self) -> None:
        def m(docs):
            del docs[0]["spec"]["template"]["spec"]["volumes"][0]["emptyDir"]["sizeLimit"]
        self.assert_caught("has no sizeLimit", "spark-worker-controller.yaml", m)

    def test_work_dir_not_on_a_volume(self) -> None:
        def m(docs):
            env(container(docs), "SPARK_WORKER_DIR")["value"] = "/var/work"
        self.assert_caught("SPARK_WORKER_DIR /var/work is not on a mounted volume", "spark-worker-controller.yaml", m)

    def test_grace_period_shorter_than_the_drain(self) -> None:
        def m(docs):
            docs[0]["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] = 5
        self.assert_caught("leaves no room for the drain", "spark-worker-controller.yaml", m)

    def test_command_not_in_the_image(self) -> None:
        def m(docs):
            container(docs)["command"] = ["/start-wroker"]
        self.assert_caught("command /start-wroker is not in the image", "spark-worker-controller.yaml", m)

    def test_recipe_replicas_kept(self) -> None:
        def m(docs):
            docs[0]["spec"]["replicas"] = 3
        self.assert_caught("replicas 3 != 2", "spark-worker-controller.yaml", m)

    def test_service_links_on(self) -> None:
        def m(docs):
            docs[0]["spec"]["template"]["spec"]["enableServiceLinks"] = True
        self.assert_caught("enableServiceLinks", "spark-master-controller.yaml", m)

    def test_kustomization_missing_a_file(self) -> None:
        def m(docs):
            docs[0]["resources"] = docs[0]["resources"][:-1]
        self.assert_caught("resources", "kustomization.yaml", m)

    def test_start_script_without_exec(self) -> None:
        def m(dirs):
            p = dirs[0] / "image" / "start-master"
            p.write_text(p.read_text().replace('exec flint-master "$@"', 'flint-master "$@"'))
        self.assert_caught("must end in exec", "", m)

    def test_dockerfiles_diverging(self) -> None:
        def m(dirs):
            p = dirs[0] / "image" / "Dockerfile.scratch"
            p.write_text(p.read_text().replace("USER 185:185", "USER 0"))
        self.assert_caught("runtime stage differs", "", m)

    # ---- the worker variant with a Java runtime and Spark's jars ----------------------------

    @staticmethod
    def edit(dirs, rel: str, old: str, new: str) -> None:
        p = dirs[0] / rel
        text = p.read_text()
        assert old in text, (rel, old)
        p.write_text(text.replace(old, new))

    def test_variant_spark_home_not_where_the_jars_go(self) -> None:
        def m(dirs):
            self.edit(dirs, "image/Dockerfile.scratch-spark", "SPARK_HOME=/opt/spark", "SPARK_HOME=/opt/spark-3.5")
        self.assert_caught("ENV SPARK_HOME='/opt/spark-3.5', but assemble-rootfs.sh puts it at /opt/spark", "", m)

    def test_variant_without_java_on_the_path(self) -> None:
        def m(dirs):
            self.edit(dirs, "image/Dockerfile.scratch-spark", "/opt/java/openjdk/bin:", "")
        self.assert_caught("lacks /opt/java/openjdk/bin", "", m)

    def test_variant_diverging_from_the_plain_image(self) -> None:
        def m(dirs):
            self.edit(dirs, "image/Dockerfile.scratch-spark", "USER 185:185", "USER 0")
        self.assert_caught("beyond LABEL/ENV/CMD", "", m)

    def test_component_patching_a_container_the_pod_lacks(self) -> None:
        def m(dirs):
            self.edit(dirs, "components/spark-jvm/spark-worker-jvm.yaml", "- name: spark-worker", "- name: spark-wroker")
        self.assert_caught("patches container 'spark-wroker'", "", m)

    def test_component_patching_a_missing_resource(self) -> None:
        def m(dirs):
            self.edit(dirs, "components/spark-jvm/spark-worker-jvm.yaml",
                      "name: spark-worker-controller", "name: spark-workers")
        self.assert_caught("which k8s-manifests/ does not have", "", m)

    def test_component_leaving_no_room_for_executor_jvms(self) -> None:
        def m(dirs):
            self.edit(dirs, "components/spark-jvm/spark-worker-jvm.yaml", 'value: "1536"', 'value: "512"')
        self.assert_caught("leaves too little for 2 executor JVMs", "", m)

    def test_component_with_a_variant_of_another_version(self) -> None:
        def m(dirs):
            self.edit(dirs, "components/spark-jvm/spark-worker-jvm.yaml", "flint:0.1.0-spark3.5", "flint:0.2.0-spark3.5")
        self.assert_caught("the Spark variant of flint:0.1.0 is flint:0.1.0-spark3.5", "", m)

    def test_component_env_no_binary_reads(self) -> None:
        def m(dirs):
            self.edit(dirs, "components/spark-jvm/spark-worker-jvm.yaml",
                      "FLINT_WORKER_MEMORY_HEADROOM_MB", "FLINT_WORKER_HEADROOM_MB")
        self.assert_caught("env FLINT_WORKER_HEADROOM_MB is not read", "", m)


if __name__ == "__main__":
    unittest.main()
