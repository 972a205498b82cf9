"""The compose backend cannot run here (no Docker engine), so each class of defect that
would keep it from starting is checked statically: on the file as the compose tool
resolves it (`docker-compose config`, no engine needed) after `compose.render` wrote
everything it mounts, for the default config and for one with every port moved."""

import base64
import dataclasses
import re
import shutil
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import yaml

from labsupport.config import LabConfig, REPO_ROOT, get_config
from labsupport.errors import LabError, PortBusy
from labsupport.stack import compose, services
from labsupport.stack.services.cassandra import cassandra_nodes, initial_token
from labsupport.stack.services.kafka import kafka_nodes
from labsupport.stack.install import policy_rc_d_script

COMPOSE = REPO_ROOT / "stack" / "compose.yaml"
PORT_FIELDS = [f.name for f in dataclasses.fields(LabConfig) if f.name.endswith("_port")]
#: JVM options a start script reads from its environment: in `environment:` they reach
#: every `docker exec` and healthcheck, and Kafka's tool scripts hand them to their JVMs
JVM_OPTION_VARIABLES = {"KAFKA_OPTS", "KAFKA_HEAP_OPTS", "KAFKA_JVM_PERFORMANCE_OPTS", "KAFKA_JMX_OPTS",
                        "JVM_OPTS", "JVM_EXTRA_OPTS", "MAX_HEAP_SIZE", "HEAP_NEWSIZE",
                        "JAVA_TOOL_OPTIONS", "JDK_JAVA_OPTIONS", "_JAVA_OPTIONS"}


def lab_config(home: Path, **env: str) -> LabConfig:
    """A config whose lab home is ``home``, with the lab's own jars linked in."""
    (home / "jars").symlink_to(get_config().home / "jars")
    return LabConfig.from_env({"LAB_BACKEND": "compose", **env}, home=home)


def resolved(cfg: LabConfig) -> dict:
    """The compose file as Docker Compose resolves it for ``cfg`` (after `render`)."""
    assert shutil.which("docker-compose"), "`./lab test` installs docker-compose to validate the file"
    compose.render(cfg)
    cmd = ["docker-compose", *compose.compose_command(cfg)[1:], "config"]
    out = subprocess.run(cmd, capture_output=True, text=True, env=compose._process_env())
    assert out.returncode == 0, out.stderr
    return yaml.safe_load(out.stdout)


@pytest.fixture(scope="module")
def default(tmp_path_factory):
    cfg = lab_config(tmp_path_factory.mktemp("default-home"))
    return cfg, resolved(cfg)


@pytest.fixture(scope="module")
def moved(tmp_path_factory):
    """Every port 20000 higher, another heap and scrape interval, a lab home elsewhere."""
    env = {f"LAB_{f.upper()}": str(getattr(LabConfig, f) + 20000) for f in PORT_FIELDS}
    cfg = lab_config(tmp_path_factory.mktemp("moved-home"), LAB_KAFKA_HEAP="384m", LAB_CASSANDRA_HEAP="768M",
                     LAB_SCRAPE_INTERVAL="7s", **env)
    return cfg, resolved(cfg)


def bind_mounts(spec: dict):
    """(service, source, target) of every bind mount (named volumes left out)."""
    for name, svc in spec["services"].items():
        for v in svc.get("volumes", []):
            source, target = v.split(":")[:2]
            if source.startswith("/"):
                yield name, Path(source), target


def jvm_of(svc: dict) -> str:
    """The server's command line as the container starts it."""
    return " ".join(map(str, [*(svc.get("entrypoint") or []), *(svc.get("command") or [])]))


# ---- the file and its images -------------------------------------------------------------
def test_compose_tool_accepts_the_file(default):
    _, spec = default
    assert set(spec["services"]) == set(compose.SERVICES)


def test_images_are_pinned_to_the_local_backends_versions():
    pom = ET.parse(REPO_ROOT / "stack" / "maven" / "pom.xml").getroot()
    props = {el.tag.split("}")[1]: el.text for el in pom.find("{*}properties")}
    images = {name: svc["image"] for name, svc in compose.spec()["services"].items()}
    assert images["kafka"] == f"apache/kafka:{props['kafka.version']}"
    assert images["cassandra"] == f"cassandra:{props['cassandra.version']}"
    for name, image in images.items():
        assert re.fullmatch(r"[\w./-]+:v?\d+\.\d+\.\d+", image), f"{name}: pin {image} to a version"


def test_header_comment_shows_the_command_the_lab_runs(default):
    cfg, _ = default
    header = COMPOSE.read_text().split("services:")[0]
    assert "docker compose -p streamlab --env-file" in header and "run/compose/compose.env" in header
    cmd = compose.compose_command(cfg)
    assert cmd[cmd.index("-p") + 1] == "streamlab" and cmd[cmd.index("--env-file") + 1] == str(compose.env_file(cfg))


# ---- issue 18.1: JVM options on the server only ----------------------------------------------
def test_no_jvm_agent_or_heap_in_a_container_wide_environment(default):
    _, spec = default
    for name, svc in spec["services"].items():
        env = svc.get("environment") or {}
        assert not JVM_OPTION_VARIABLES & set(env), f"{name}: {JVM_OPTION_VARIABLES & set(env)} in environment:"
        for key, value in env.items():
            assert not re.search(r"-javaagent|-Xm[sxn]", str(value)), f"{name}: {key}={value}"
        assert "env_file" not in svc, f"{name}: env_file reaches every exec and healthcheck too"


def test_the_exporter_agent_and_heap_reach_each_server_process(default):
    cfg, spec = default
    kafka, cassandra = jvm_of(spec["services"]["kafka"]), jvm_of(spec["services"]["cassandra"])
    agent = f"/opt/lab/{compose.AGENT_JAR}=0.0.0.0:"
    assert f"KAFKA_OPTS=\"-javaagent:{agent}{cfg.kafka_exporter_port}:/opt/lab/jmx/kafka.yml\"" in kafka
    assert f"-Xms{cfg.kafka_heap} -Xmx{cfg.kafka_heap}" in kafka
    assert "exec env" in kafka and "kafka-server-start.sh" in kafka  # on the server's exec only
    assert f"JVM_EXTRA_OPTS=-javaagent:{agent}{cfg.cassandra_exporter_port}:/opt/lab/jmx/cassandra.yml" in cassandra
    assert f"MAX_HEAP_SIZE={cfg.cassandra_heap}" in cassandra and "HEAP_NEWSIZE" not in cassandra
    assert spec["services"]["cassandra"]["entrypoint"][-1] == "docker-entrypoint.sh"  # the image's, after env


def test_agent_jar_is_mounted_under_one_fixed_name(default):
    cfg, spec = default
    assert "jmx_prometheus_javaagent-" not in COMPOSE.read_text(), "a versioned jar name breaks on an upgrade"
    versioned = compose.agent_jar(cfg)
    fixed = compose.render_dir(cfg) / compose.AGENT_JAR
    assert fixed.read_bytes() == versioned.read_bytes()
    assert {s for _, s, _ in bind_mounts(spec) if s.name == compose.AGENT_JAR} == {fixed}


# ---- issue 18.2: mounts follow LAB_HOME ------------------------------------------------------
@pytest.mark.parametrize("which", ["default", "moved"])
def test_every_mount_source_is_rendered_under_the_lab_home_or_shared_from_the_repo(which, request):
    cfg, spec = request.getfixturevalue(which)
    shared = [REPO_ROOT / "stack", REPO_ROOT / "dashboards"]
    for name, source, target in bind_mounts(spec):
        # a missing source makes Docker create an empty *directory* there
        assert source.exists(), f"{name}: {source} does not exist after render()"
        if source == cfg.paths.checkpoints:  # storage the host's driver and the worker share
            assert target == str(source), f"{name}: the checkpoint root must be at the driver's path"
            continue
        assert source.is_file() == bool(Path(target).suffix), f"{name}: {source} → {target}: file vs directory"
        assert source.is_relative_to(compose.render_dir(cfg)) or any(source.is_relative_to(d) for d in shared), \
            f"{name}: {source} is neither rendered into {compose.render_dir(cfg)} nor a shared file of the repo"
    assert ".lab" not in COMPOSE.read_text().split("services:")[1], "a hard-coded lab home ignores LAB_HOME"


def test_every_config_file_of_the_local_backend_reaches_the_containers(default):
    cfg, spec = default
    sources = [s for _, s, _ in bind_mounts(spec)]
    stack = REPO_ROOT / "stack"
    for path in sorted(p for d in ("kafka", "cassandra", "jmx", "prometheus") for p in (stack / d).iterdir()):
        rel = path.relative_to(stack).as_posix()
        if rel in compose.RENDERED:
            assert compose.render_dir(cfg) / compose.RENDERED[rel] in sources, f"rendered {rel} is not mounted"
        elif rel not in compose.IMAGE_PROVIDES:
            assert any(path == s or path.is_relative_to(s) for s in sources), \
                f"{rel}: mount it, render it (compose.RENDERED) or say why the image has it (compose.IMAGE_PROVIDES)"


def test_rendered_files_are_the_shared_ones_plus_the_containers_keys(moved):
    cfg, _ = moved
    out = compose.render_dir(cfg)
    props = dict(ln.split("=", 1) for ln in (out / "kafka/server.properties").read_text().splitlines()
                 if "=" in ln and not ln.startswith("#"))
    shared = (REPO_ROOT / "stack/kafka/server.properties").read_text()
    for ln in shared.splitlines():
        if "=" in ln and not ln.startswith("#"):
            assert props[ln.split("=", 1)[0]] == ln.split("=", 1)[1]
    assert props["listeners"].startswith(f"PLAINTEXT://0.0.0.0:{cfg.kafka_port},")
    assert props["advertised.listeners"] == f"PLAINTEXT://{cfg.host}:{cfg.kafka_port}"
    assert props["log.dirs"] == "/var/lib/kafka/data"  # the kafka-data volume

    conf = yaml.safe_load((out / "cassandra/cassandra.yaml").read_text())
    for key, value in yaml.safe_load((REPO_ROOT / "stack/cassandra/cassandra.yaml").read_text()).items():
        if key != "seed_provider":
            assert conf[key] == value, key
    assert (conf["rpc_address"], conf["broadcast_rpc_address"], conf["native_transport_port"]) == \
        ("0.0.0.0", cfg.host, cfg.cassandra_port)
    assert all(d.startswith("/var/lib/cassandra/") for d in conf["data_file_directories"])  # the volume


def test_a_rerender_rewrites_in_place_and_says_what_changed(tmp_path):
    """Docker binds a file by inode: a file replaced by a rename stays old in the container."""
    cfg = lab_config(tmp_path)
    assert all(compose.render(cfg).values())
    config = compose.render_dir(cfg) / compose.RENDERED["prometheus/jobs.yml"]
    inode = config.stat().st_ino
    assert not any(compose.render(cfg).values())
    changed = compose.render(cfg.replace(scrape_interval="9s"))
    assert changed["prometheus"] and not changed["kafka"]
    assert config.stat().st_ino == inode and "9s" in config.read_text()


# ---- issue 18.3/18.4: ports follow the config, clashes are named ------------------------------
def test_every_port_in_the_compose_file_follows_the_config(moved):
    cfg, spec = moved
    s = spec["services"]
    for name, svc in s.items():  # each container publishes the ports the lab checks and probes
        published = [p.split("/")[0].split(":") for p in svc.get("ports", [])]
        lab = compose.ComposeService(name, cfg)
        assert {(host, int(port)) for host, port, _ in published} == \
            ({(lab.bind_address(label), port) for label, port in lab.ports().items()} if published else set()), name
        inside = [str(cfg.cassandra_exporter_port)] if name in compose.RING_SERVICES else []  # node 1's agent port
        for _, host_port, container_port in published:
            assert container_port in (host_port, *inside), name
    taken = {int(p.split(":")[1].split("/")[0]) for name, svc in s.items() if name not in compose.RING_SERVICES
             for p in svc.get("ports", [])}
    taken.add(int(next(a for a in s["prometheus"]["command"] if a.startswith("--web.listen-address")).rsplit(":", 1)[1]))
    taken.add(int(s["grafana"]["environment"]["GF_SERVER_HTTP_PORT"]))
    for name in compose.SPARK_CLUSTER:  # host network: the ports are the daemons' arguments
        cmd = s[name]["command"]
        taken |= {int(cmd[i + 1]) for i, a in enumerate(cmd) if a in ("--port", "--webui-port")}
        taken |= {int(a.rsplit(":", 1)[1]) for a in cmd if a.startswith("spark://")}
    assert taken == {getattr(cfg, f) for fields in compose.HOST_PORTS.values() for f in fields}
    # no default port left anywhere: in the file, its commands and healthchecks, or a rendered file
    defaults = {str(getattr(LabConfig, f)) for f in PORT_FIELDS}
    texts = {"compose config": yaml.safe_dump(spec)}
    texts.update({p.name: p.read_text() for p in compose.render_dir(cfg).rglob("*") if p.suffix in (".yml", ".yaml",
                                                                                               ".properties")})
    for where, text in texts.items():
        stale = {d for d in defaults if re.search(rf"(?<![\d.]){d}(?!\d)", text)}
        assert not stale, f"{where}: default port(s) {stale} instead of the config's"


def test_grafanas_datasource_follows_the_prometheus_port(moved):
    """Grafana expands ${VAR} in provisioning files from its container's environment."""
    cfg, spec = moved
    grafana = spec["services"]["grafana"]
    folder = next(s for _, s, t in bind_mounts(spec) if t == "/etc/grafana/provisioning/datasources")
    [source] = yaml.safe_load((folder / "prometheus.yml").read_text())["datasources"]
    expand = lambda text: re.sub(r"\$\{(\w+)\}", lambda m: str(grafana["environment"][m.group(1)]), text)  # noqa: E731
    assert expand(source["url"]) == cfg.prometheus == f"http://127.0.0.1:{cfg.prometheus_port}"
    assert expand(source["jsonData"]["timeInterval"]) == "7s"


def test_grafana_keeps_its_own_provisioning_folders(default):
    _, spec = default
    targets = [t for name, _, t in bind_mounts(spec) if name == "grafana"]
    assert "/etc/grafana/provisioning" not in targets, "hides the image's alerting/ and plugins/ folders"
    provider = yaml.safe_load((REPO_ROOT / "dashboards/grafana/provisioning/dashboards/lab.yml").read_text())
    assert provider["providers"][0]["options"]["path"] in targets


def test_a_held_port_is_refused_naming_debians_prometheus(tmp_path):
    import socket

    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        cfg = lab_config(tmp_path, LAB_PROMETHEUS_PORT=str(holder.getsockname()[1]))
        with pytest.raises(PortBusy, match="systemctl disable --now prometheus"):
            compose.ComposeService("prometheus", cfg).check_ports_free()
    compose.ComposeService("prometheus", cfg).check_ports_free()  # released: no complaint


def test_policy_rc_d_forbids_starting_debians_prometheus_only(tmp_path):
    script = tmp_path / "policy-rc.d"
    script.write_text(policy_rc_d_script())
    verdict = lambda unit: subprocess.run(["sh", str(script), unit, "start"]).returncode  # noqa: E731
    assert verdict("prometheus.service") == verdict("prometheus") == 101  # "action forbidden"
    assert verdict("ssh.service") == 0


# ---- issue 18.5: lessons drive the containers ---------------------------------------------------
def test_with_the_compose_backend_its_services_are_containers(tmp_path):
    cfg = lab_config(tmp_path)
    for name in ("kafka", "cassandra", "prometheus"):
        assert isinstance(services.service(name, cfg), compose.ComposeService), name
    assert not isinstance(services.service("events-api", cfg), compose.ComposeService)  # stays a process
    assert not isinstance(services.service("kafka", cfg.replace(backend="local")), compose.ComposeService)


# ---- issue 14: the Kafka cluster as a profile --------------------------------------------------
@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    cfg = lab_config(tmp_path_factory.mktemp("cluster-home"), LAB_KAFKA_BROKERS="3")
    return cfg, resolved(cfg)


def test_the_layout_is_a_profile_the_lab_chooses(default, cluster):
    for (cfg, spec), wanted in ((default, "one-broker"), (cluster, "kafka-cluster")):
        cmd = compose.compose_command(cfg)
        assert cmd[cmd.index("--profile") + 1] == wanted
        assert {n for n, svc in spec["services"].items() if wanted in svc.get("profiles", [])} == \
            set(services.kafka_names(cfg))
    for name, svc in default[1]["services"].items():  # everything else runs in both layouts
        assert svc.get("profiles") in (None, ["one-broker"], ["kafka-cluster"], ["spark-cluster"], ["ring"]), name
    assert "kafka" not in (default[1]["services"]["prometheus"].get("depends_on") or {}), \
        "a dependency on a service of an inactive profile fails `up`"


def test_each_cluster_node_runs_what_the_local_backend_renders(cluster):
    """Host network: a node's server.properties is the local backend's, only its log
    directory moved onto the node's volume."""
    cfg, spec = cluster
    local = cfg.replace(backend="local")
    for node in kafka_nodes(cfg):
        svc = spec["services"][node.name]
        assert svc["network_mode"] == "host" and "ports" not in svc
        rendered = (compose.render_dir(cfg) / node.name / "server.properties").read_text().splitlines()
        mine = services.service(node.name, local).render_properties().splitlines()
        differ = [(a, b) for a, b in zip(rendered, mine) if a != b]
        assert len(rendered) == len(mine) and [a for a, _ in differ] == ["log.dirs=/var/lib/kafka/data/logs"], differ
        assert f"{node.name}-data:/var/lib/kafka/data" in {v.rsplit(":", 1)[0] if v.endswith((":rw", ":ro")) else v for v in svc["volumes"]}
        assert next(t for _, s, t in bind_mounts({"services": {node.name: svc}})
                    if s.name == "server.properties") == "/opt/lab/run/server.properties"


def test_each_cluster_node_gets_its_exporter_port_and_heap_on_the_server_only(cluster):
    cfg, spec = cluster
    for node in kafka_nodes(cfg):
        svc = spec["services"][node.name]
        env = svc["environment"]
        assert int(env["NODE_EXPORTER_PORT"]) == node.exporter_port
        assert env["NODE_HEAP"] == (cfg.kafka_controller_heap if node.roles == "controller" else cfg.kafka_heap)
        jvm = jvm_of(svc)
        assert f"-javaagent:/opt/lab/{compose.AGENT_JAR}={cfg.host}:$NODE_EXPORTER_PORT:/opt/lab/jmx/kafka.yml" \
            in jvm.replace("$$", "$")
        assert "exec env" in jvm and "kafka-server-start.sh" in jvm
        assert env["CLUSTER_ID"] == spec["services"]["kafka-controller"]["environment"]["CLUSTER_ID"]
    targets = {t for job in yaml.safe_load((compose.render_dir(cfg) / "prometheus/prometheus.yml").read_text())
               ["scrape_configs"] if job["job_name"] == "kafka" for sc in job["static_configs"] for t in sc["targets"]}
    assert targets == {f"127.0.0.1:{n.exporter_port}" for n in kafka_nodes(cfg)}


def test_with_the_cluster_profile_kafka_names_the_containers(cluster):
    cfg, _ = cluster
    assert all(isinstance(services.service(n, cfg), compose.ComposeService) for n in services.kafka_names(cfg))
    whole = services.service("kafka", cfg)
    assert [m.name for m in whole.members] == services.kafka_names(cfg)
    assert all(isinstance(m, compose.ComposeService) for m in whole.members)
    local = cfg.replace(backend="local")
    assert {n: services.service(n, cfg).ports() for n in services.kafka_names(cfg)} == \
        {n: services.service(n, local).ports() for n in services.kafka_names(cfg)}


def test_the_spark_cluster_profile_runs_the_local_services_arguments(tmp_path):
    """On when the stream is to run on the lab's own master, with the very arguments and
    spark-defaults.conf of the local services, the image's Spark the lab's pyspark."""
    import pyspark

    from labsupport.stack.services.spark import SparkMasterService, SparkWorkerService, daemon_properties

    base = lab_config(tmp_path)
    assert "spark-cluster" not in compose.compose_command(base)
    cfg = base.replace(spark_master=base.spark_cluster_url)
    cmd = compose.compose_command(cfg)
    assert [cmd[i + 1] for i, a in enumerate(cmd) if a == "--profile"] == ["one-broker", "spark-cluster"]
    assert compose.active_services(cfg)[-3:] == ["spark-master", "spark-worker", "grafana"]
    spec = resolved(cfg)["services"]
    conf = compose.render_dir(cfg) / "spark" / "spark-defaults.conf"
    assert conf.read_text() == daemon_properties()
    local = cfg.replace(backend="local")
    for name, svc_class in (("spark-master", SparkMasterService), ("spark-worker", SparkWorkerService)):
        svc = spec[name]
        assert svc["image"] == f"streamlab/spark:{pyspark.__version__}" and svc["network_mode"] == "host"
        mine = [str(a) for a in svc_class(local).argv()[1:]]  # after the spark-class path
        theirs = [str(a) for a in svc["command"][1:]]
        differ = {(a, b) for a, b in zip(mine, theirs) if a != b}
        assert len(mine) == len(theirs) and {a for a, _ in differ} <= {str(svc_class(local).properties_file),
                                                                       str(local.paths.home / "spark-work")}, differ
    assert spec["spark-master"]["build"]["args"]["PYSPARK_VERSION"] == pyspark.__version__


def test_a_cluster_of_another_size_is_refused(tmp_path):
    with pytest.raises(LabError, match="LAB_KAFKA_BROKERS=3"):
        compose.render(lab_config(tmp_path, LAB_KAFKA_BROKERS="2"))


# ---- issue 25: the Cassandra ring as a profile ------------------------------------------------
@pytest.fixture(scope="module")
def ring(tmp_path_factory):
    cfg = lab_config(tmp_path_factory.mktemp("ring-home"), LAB_CASSANDRA_NODES="3")
    return cfg, resolved(cfg)


def named_volume(svc: dict, target: str) -> str:
    return next(v.split(":")[0] for v in svc["volumes"] if v.split(":")[1] == target)


def test_the_ring_is_a_profile_that_adds_nodes_to_the_first(default, ring):
    """`--profile ring` adds cassandra-2 and -3; `cassandra` runs in both layouts (node 1
    of the ring), so Prometheus' dependency on it holds in both."""
    for (cfg, spec), on in ((default, False), (ring, True)):
        cmd = compose.compose_command(cfg)
        assert ("ring" in [cmd[i + 1] for i, a in enumerate(cmd) if a == "--profile"]) == on
        assert {n for n, svc in spec["services"].items() if "ring" in svc.get("profiles", [])} == \
            set(compose.RING_SERVICES)
        assert "profiles" not in spec["services"]["cassandra"]
        assert "cassandra" in spec["services"]["prometheus"]["depends_on"]
    cfg, _ = ring
    assert [compose.container_of(n) for n in compose.active_services(cfg) if n.startswith("cassandra")] == \
        ["cassandra", *compose.RING_SERVICES]


def test_each_layout_and_ring_node_keeps_its_own_volume(default, ring):
    """The one node's data stays in cassandra-data; the ring's node 1 (the same container)
    gets cassandra-1-data, and a purge of one layout's node never deletes the other's."""
    assert named_volume(default[1]["services"]["cassandra"], "/var/lib/cassandra") == "cassandra-data"
    cfg, spec = ring
    volumes = [named_volume(spec["services"][compose.container_of(n.name)], "/var/lib/cassandra")
               for n in cassandra_nodes(cfg)]
    assert volumes == [f"{n.name}-data" for n in cassandra_nodes(cfg)] and set(volumes) <= set(spec["volumes"])
    assert compose.ComposeService("cassandra-1", cfg).volumes() == ["streamlab_cassandra-1-data"]
    assert compose.ComposeService("cassandra", default[0]).volumes() == ["streamlab_cassandra-data"]


def test_each_ring_node_runs_the_local_rings_settings_on_its_containers_addresses(ring):
    """Every node's own rendered cassandra.yaml: the local backend's ring node (token,
    bootstrap, memtables, ports: `ring_settings`) with only the addresses and directories
    moved into its container, gossip on its hostname, every node a seed by service name,
    CQL announced where the host reaches it."""
    cfg, spec = ring
    local = cfg.replace(backend="local")
    names = {compose.container_of(n.name) for n in cassandra_nodes(cfg)}
    sources = set()
    for node in cassandra_nodes(cfg):
        svc = spec["services"][compose.container_of(node.name)]
        [source] = [src for _, src, t in bind_mounts({"services": {node.name: svc}})
                    if t == "/opt/lab/run/cassandra.yaml"]
        sources.add(source)
        conf = yaml.safe_load(source.read_text())
        assert svc["hostname"] == conf["listen_address"] == compose.container_of(node.name)
        assert set(conf["seed_provider"][0]["parameters"][0]["seeds"].split(",")) == names
        assert (conf["rpc_address"], conf["broadcast_rpc_address"]) == ("0.0.0.0", node.address)
        assert (conf["num_tokens"], conf["initial_token"], conf["auto_bootstrap"]) == \
            (1, str(initial_token(node.index, 3)), False)
        mine = services.service(node.name, local).render_yaml()
        moved = {k for k in set(conf) | set(mine) if conf.get(k) != mine.get(k)}
        assert moved <= {"listen_address", "rpc_address", "broadcast_rpc_address", "seed_provider",
                         "data_file_directories", "commitlog_directory", "saved_caches_directory",
                         "hints_directory", "cdc_raw_directory"}, moved
        assert f"MAX_HEAP_SIZE={cfg.cassandra_ring_heap}" in jvm_of(svc)
    assert len(sources) == 3


def test_prometheus_scrapes_each_ring_node_where_its_container_publishes_it(ring):
    cfg, spec = ring
    [job] = [j for j in yaml.safe_load((compose.render_dir(cfg) / "prometheus/prometheus.yml").read_text())
             ["scrape_configs"] if j["job_name"] == "cassandra"]
    targets = {sc["labels"]["service"]: sc["targets"] for sc in job["static_configs"]}
    assert set(targets) == {n.name for n in cassandra_nodes(cfg)}
    for node in cassandra_nodes(cfg):
        ports = spec["services"][compose.container_of(node.name)]["ports"]
        published = {tuple(p.split("/")[0].split(":")[:2]) for p in ports}
        assert published == {(node.address, str(cfg.cassandra_port)), (cfg.host, str(node.exporter_port))}
        assert targets[node.name] == [f"{cfg.host}:{node.exporter_port}"]
    assert len({n.exporter_port for n in cassandra_nodes(cfg)}) == 3


def test_with_the_ring_profile_cassandra_names_the_containers(ring):
    cfg, _ = ring
    whole = services.service("cassandra", cfg)
    assert [m.name for m in whole.members] == ["cassandra-1", "cassandra-2", "cassandra-3"]
    assert [m.container_name for m in whole.members] == ["cassandra", *compose.RING_SERVICES]
    local = cfg.replace(backend="local")
    for m in whole.members:
        twin = services.service(m.name, local)
        assert {(m.bind_address(k), p) for k, p in m.ports().items()} <= \
            {(twin.bind_address(k), p) for k, p in twin.ports().items()}, m.name


def test_a_ring_of_another_size_is_refused(tmp_path):
    with pytest.raises(LabError, match="LAB_CASSANDRA_NODES=3"):
        compose.render(lab_config(tmp_path, LAB_CASSANDRA_NODES="2"))


# ---- issue 18.7 ----------------------------------------------------------------------------------
def test_kafka_cluster_id_is_a_kafka_uuid():
    """What `kafka-storage.sh random-uuid` makes and Kafka's docs ask for: unpadded URL-safe
    base64 of exactly 16 bytes (Uuid.fromString). Kafka 4.1's formatter stores any string
    (tried), so the old 17-byte id was a conformance fault, not what kept Kafka down."""
    ids = {compose.spec()["services"][n]["environment"]["CLUSTER_ID"] for n in ["kafka", *compose.CLUSTER_NODES]}
    assert len(ids) == 2, "one id for the one broker, one for the whole cluster"
    for cid in ids:
        raw = base64.urlsafe_b64decode(cid + "==")
        assert len(cid) == 22 and len(raw) == 16, f"{cid!r} decodes to {len(raw)} bytes"
        assert base64.urlsafe_b64encode(raw).decode().rstrip("=") == cid and not cid.startswith("-")
        assert raw not in (bytes(16), bytes(15) + b"\x01"), "Kafka reserves the zero and the metadata topic id"
