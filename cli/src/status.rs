//! `orderflow status`: the outbox backlog and consumer groups' lag.

use anyhow::Context as _;
use producers::KafkaConfig;

/// Settings of `orderflow status`.
#[derive(Debug, clap::Args)]
pub struct StatusArgs {
    /// A consumer group and its topics whose lag to show, as GROUP=TOPIC[,TOPIC...]; repeat for several.
    #[arg(long = "group", value_name = "GROUP=TOPICS", value_parser = parse_group)]
    groups: Vec<(String, Vec<String>)>,
}

fn parse_group(text: &str) -> Result<(String, Vec<String>), String> {
    let (group, topics) = text
        .split_once('=')
        .ok_or_else(|| format!("expected GROUP=TOPIC[,TOPIC...], got {text:?}"))?;
    let topics: Vec<String> = topics
        .split(',')
        .filter(|t| !t.is_empty())
        .map(str::to_owned)
        .collect();
    if group.is_empty() || topics.is_empty() {
        return Err(format!("expected GROUP=TOPIC[,TOPIC...], got {text:?}"));
    }
    Ok((group.to_owned(), topics))
}

pub async fn run(db: &db::DbConfig, kafka: &KafkaConfig, args: &StatusArgs) -> anyhow::Result<()> {
    let pool = db::connect(db).await?;
    db::require_migrated(&pool).await?;
    let backlog = outbox::quarantine::backlog(&pool).await?;
    println!(
        "outbox: {} unpublished, oldest {}, {} quarantined",
        backlog.records,
        backlog
            .oldest_age
            .map_or_else(|| "-".to_owned(), |age| format!("{age:.1?} ago")),
        backlog.quarantined
    );
    for (group, topics) in &args.groups {
        let lags = consumers::lag::group_lag(kafka, group, topics)
            .await
            .with_context(|| format!("failed to read the lag of group {group}"))?;
        let total: i64 = lags.iter().map(|l| l.lag).sum();
        println!("group {group}: lag {total}");
        for l in lags {
            let committed = l
                .committed
                .map_or_else(|| "-".to_owned(), |c| c.to_string());
            println!(
                "  {}/{}\tcommitted {committed}\tend {}\tlag {}",
                l.topic, l.partition, l.high, l.lag
            );
        }
    }
    Ok(())
}
