//! compose/compose.yaml is for users with Docker; no engine runs here, so this checks that it parses and
//! hangs together: the services the design names exist, dependencies point at real services, Kafka runs in
//! KRaft mode, and the Dockerfile it builds from is in the repository.

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

#[test]
fn compose_names_kafka_in_kraft_mode_the_registry_and_postgres() {
    let compose = load();
    let services = compose["services"].as_hash().expect("a services map");
    for name in ["kafka", "schema-registry", "postgres"] {
        assert!(
            services.contains_key(&Yaml::from_str(name)),
            "service {name}"
        );
    }
    let kafka = &compose["services"]["kafka"];
    assert!(
        kafka["image"]
            .as_str()
            .unwrap()
            .starts_with("apache/kafka:")
    );
    assert_eq!(
        kafka["environment"]["KAFKA_PROCESS_ROLES"].as_str(),
        Some("broker,controller"),
        "KRaft, no ZooKeeper"
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
