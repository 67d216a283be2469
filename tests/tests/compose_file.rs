//! compose/compose.yaml is for users with Docker; no engine runs here, so this checks that it parses and
//! hangs together: the services the design names exist, dependencies point at real services, each region's
//! Kafka runs in KRaft mode on the version `./dev up` runs (env/kafka/pom.xml), and the Dockerfile it builds
//! from is in the repository.

use std::path::Path;

use yaml_rust2::{Yaml, YamlLoader};

fn compose_dir() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../compose"))
}

fn load() -> Yaml {
    let text =
        std::fs::read_to_string(compose_dir().join("compose.yaml")).expect("read compose.yaml");
    let mut docs = YamlLoader::load_from_str(&text).expect("compose.yaml is valid YAML");
    assert_eq!(docs.len(), 1, "one YAML document");
    docs.remove(0)
}

/// The Kafka version `./dev up` runs: `<kafka.version>` in env/kafka/pom.xml.
fn local_kafka_version() -> String {
    let pom = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../env/kafka/pom.xml"))
        .expect("read env/kafka/pom.xml");
    let start = pom
        .find("<kafka.version>")
        .expect("<kafka.version> in the pom")
        + 15;
    let end = start + pom[start..].find('<').expect("</kafka.version>");
    pom[start..end].trim().to_owned()
}

#[test]
fn compose_runs_two_kraft_regions_on_the_local_kafka_version_the_registry_and_postgres() {
    let compose = load();
    let services = compose["services"].as_hash().expect("a services map");
    for name in [
        "kafka-east",
        "kafka-west",
        "mm2",
        "schema-registry",
        "postgres",
    ] {
        assert!(
            services.contains_key(&Yaml::from_str(name)),
            "service {name}"
        );
    }
    let image = format!("apache/kafka:{}", local_kafka_version());
    let mm2 = &compose["services"]["mm2"];
    assert_eq!(
        mm2["image"].as_str(),
        Some(image.as_str()),
        "MirrorMaker 2 at the brokers' version"
    );
    let mounted = mm2["volumes"][0]
        .as_str()
        .unwrap()
        .split(':')
        .next()
        .unwrap();
    assert!(
        compose_dir()
            .join(mounted)
            .ends_with("env/mm2/mm2.properties")
            && compose_dir().join(mounted).is_file(),
        "mm2 runs ./dev up's settings, not {mounted}"
    );
    for region in ["kafka-east", "kafka-west"] {
        let kafka = &compose["services"][region];
        assert_eq!(
            kafka["image"].as_str(),
            Some(image.as_str()),
            "{region} runs the Kafka of ./dev up"
        );
        assert_eq!(
            kafka["environment"]["KAFKA_PROCESS_ROLES"].as_str(),
            Some("broker,controller"),
            "{region}: KRaft, no ZooKeeper"
        );
        assert_eq!(
            kafka["environment"]["KAFKA_AUTO_CREATE_TOPICS_ENABLE"].as_str(),
            Some("false"),
            "{region}: topics are created on purpose, as by ./dev up"
        );
    }
    assert_ne!(
        compose["services"]["kafka-east"]["environment"]["CLUSTER_ID"],
        compose["services"]["kafka-west"]["environment"]["CLUSTER_ID"],
        "each region is a cluster of its own"
    );
}

#[test]
fn compose_dependencies_and_builds_point_at_what_exists() {
    let compose = load();
    let services = compose["services"].as_hash().unwrap();
    for (name, service) in services {
        let name = name.as_str().unwrap();
        if let Some(depends) = service["depends_on"].as_hash() {
            for dependency in depends.keys() {
                assert!(
                    services.contains_key(dependency),
                    "{name} depends on unknown service {dependency:?}"
                );
            }
        }
        if let Some(dockerfile) = service["build"]["dockerfile"].as_str() {
            let context = compose_dir().join(service["build"]["context"].as_str().unwrap());
            assert!(
                context.join(dockerfile).is_file(),
                "{name}: {dockerfile} is missing"
            );
        }
        assert!(
            service["image"].as_str().is_some() || service["build"].as_hash().is_some(),
            "{name} has neither image nor build"
        );
    }
}
