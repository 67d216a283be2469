//! Broker faults, injected with librdkafka's mock cluster: the broker goes down for 20 s under load.

mod common;

use std::time::Duration;

use common::{Running, handler};
use producers::KafkaConfig;
use producers::headers::{self, RecordHeaders};
use rdkafka::mocking::MockCluster;
use rdkafka::producer::{FutureProducer, FutureRecord};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_down_for_20_s_under_load_loses_nothing_and_doubles_no_effect() {
    let mock = MockCluster::new(1).expect("mock cluster");
    let topic = testkit::unique_name("faults");
    mock.create_topic(&topic, 2, 1).unwrap();
    mock.create_topic(&format!("{topic}.dlq"), 1, 1).unwrap();
    mock.create_topic(&format!("{topic}.retry"), 1, 1).unwrap();
    let kafka = KafkaConfig::new(mock.bootstrap_servers());
    let db = common::effects_db().await;
    // The mock cluster does not answer CreateTopics; the topics above exist already.
    let group = testkit::unique_name("faults");
    let consumer = Running::start_with(&group, &db, &kafka, &topic, handler(), |settings| {
        consumers::ConsumerConfig {
            create_topics: false,
            ..settings
        }
    });

    let total = 2_000;
    let producing = {
        let (kafka, topic) = (kafka.clone(), topic.clone());
        tokio::spawn(async move {
            let producer: FutureProducer = kafka
                .client_config()
                .set("enable.idempotence", "true")
                .set("message.timeout.ms", "120000")
                .create()
                .unwrap();
            let mut every = tokio::time::interval(Duration::from_millis(10));
            let mut deliveries = Vec::new();
            for n in 0..total {
                every.tick().await;
                let record_headers = RecordHeaders::from([(
                    headers::EVENT_ID.to_owned(),
                    uuid::Uuid::now_v7().to_string(),
                )]);
                let (key, payload) = (format!("order-{}", n % 13), n.to_string());
                let record = FutureRecord::to(&topic)
                    .key(&key)
                    .payload(&payload)
                    .headers(headers::to_kafka(&record_headers));
                deliveries.push(producer.send_result(record).map_err(|(e, _)| e).unwrap());
            }
            for delivery in deliveries {
                delivery.await.unwrap().map_err(|(e, _)| e).unwrap();
            }
        })
    };

    tokio::time::sleep(Duration::from_secs(3)).await;
    mock.broker_down(1).unwrap();
    tokio::time::sleep(Duration::from_secs(20)).await;
    mock.broker_up(1).unwrap();
    producing.await.unwrap();

    common::wait_for_effects(&db, total, Duration::from_secs(180)).await;
    consumer.stop().await;
}

/// The dead-letter producer fails fatally (the broker answers its first request "out of order sequence
/// number", and an idempotent producer cannot go on after that): the runtime builds a new one, and the
/// poison record reaches `<topic>.dlq` instead of holding its partition for ever.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_letter_producer_that_failed_fatally_is_replaced() {
    use rdkafka::consumer::{Consumer as _, StreamConsumer};
    use rdkafka::types::{RDKafkaApiKey, RDKafkaRespErr};
    let mock = MockCluster::new(1).expect("mock cluster");
    let topic = testkit::unique_name("fatal-dlq");
    let dead_letters = format!("{topic}.dlq");
    mock.create_topic(&topic, 1, 1).unwrap();
    mock.create_topic(&dead_letters, 1, 1).unwrap();
    mock.create_topic(&format!("{topic}.retry"), 1, 1).unwrap();
    let kafka = KafkaConfig::new(mock.bootstrap_servers());
    let producer: FutureProducer = kafka.client_config().create().unwrap();
    let record_headers = RecordHeaders::from([(
        headers::EVENT_ID.to_owned(),
        uuid::Uuid::now_v7().to_string(),
    )]);
    let record = FutureRecord::to(&topic)
        .key("order-1")
        .payload("poison")
        .headers(headers::to_kafka(&record_headers));
    producer
        .send(record, Duration::from_secs(10))
        .await
        .map_err(|(e, _)| e)
        .unwrap();
    // From now on the next produce request (the dead letter's) is answered with a fatal error.
    mock.request_errors(
        RDKafkaApiKey::Produce,
        &[RDKafkaRespErr::RD_KAFKA_RESP_ERR_OUT_OF_ORDER_SEQUENCE_NUMBER],
    );
    let db = common::effects_db().await;
    let group = testkit::unique_name("fatal-dlq");
    let consumer = Running::start_with(&group, &db, &kafka, &topic, handler(), |settings| {
        consumers::ConsumerConfig {
            create_topics: false,
            ..settings
        }
    });
    let reader: StreamConsumer = testkit::consumer_config(&kafka, &testkit::unique_name("check"))
        .create()
        .unwrap();
    reader.subscribe(&[&dead_letters]).unwrap();
    let arrived = tokio::time::timeout(Duration::from_secs(60), reader.recv()).await;
    let stats = format!("{:?}", consumer.stats);
    consumer.stop().await;
    assert!(
        matches!(arrived, Ok(Ok(_))),
        "no dead letter in 60 s: {stats}"
    );
}
