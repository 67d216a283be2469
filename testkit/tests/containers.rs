//! The container path: with an engine, the containers answer; without one, the reason names the engine.
#![cfg(feature = "testcontainers")]

use testkit::containers::{self, Unavailable};

#[test]
fn containers_start_with_an_engine_or_say_why_not() {
    match containers::shared() {
        Ok(running) => {
            assert!(running.database_url.starts_with("postgres://"));
            let port = running.kafka_bootstrap.rsplit(':').next().unwrap();
            assert!(port.parse::<u16>().is_ok(), "{}", running.kafka_bootstrap);
            std::net::TcpStream::connect(&running.kafka_bootstrap)
                .expect("kafka container answers");
        }
        Err(Unavailable::NoEngine(why)) => {
            assert!(containers::skip_without_engine(
                "containers_start_with_an_engine_or_say_why_not"
            ));
            assert!(why.contains("docker"), "the reason names the engine: {why}");
        }
        Err(e @ Unavailable::StartFailed(_)) => panic!("an engine answered but {e}"),
    }
}

#[test]
fn the_kafka_container_runs_the_version_of_dev_up() {
    let pom = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../env/kafka/pom.xml"))
        .unwrap();
    assert!(
        pom.contains(&format!(
            "<kafka.version>{}</kafka.version>",
            containers::KAFKA_IMAGE_TAG
        )),
        "env/kafka/pom.xml pins another Kafka than {}",
        containers::KAFKA_IMAGE_TAG
    );
}
