//! Client against the simulator over real TCP: every user extracted exactly once, the plain
//! list without DEPROVISIONED users, filter/search, Link headers, epochs, and pacing under a
//! rate limit.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use connectors::okta::simulator::{RateLimitConfig, Simulator, SimulatorConfig, SimulatorHandle};
use connectors::okta::{
    list_every_user, list_users, Error, OktaClient, UserDirectory, UserQuery, UserStatus,
};
use futures::{StreamExt, TryStreamExt};

async fn start(users: u64, seed: u64) -> SimulatorHandle {
    let mut config = SimulatorConfig::with_users(users);
    config.seed = seed;
    Simulator::start(config).await.unwrap()
}

/// Extracts everything with `list_every_user`; returns counts per status and checks that no
/// user id came twice.
async fn extract_every_user(
    client: Arc<dyn UserDirectory>,
    concurrency: usize,
) -> BTreeMap<UserStatus, u64> {
    let mut ids = HashSet::new();
    let mut counts = BTreeMap::new();
    let mut pages = std::pin::pin!(list_every_user(client, concurrency));
    while let Some(page) = pages.next().await {
        for user in page.unwrap().users {
            assert!(ids.insert(user.id.clone()), "user {} came twice", user.id);
            *counts.entry(user.status).or_insert(0) += 1;
        }
    }
    counts
}

#[tokio::test]
async fn every_user_exactly_once_for_sizes_around_the_page_size() {
    for users in [0u64, 1, 200, 401, 5_000] {
        let sim = start(users, users + 7).await;
        let client = OktaClient::new(sim.client_config()).unwrap();
        let counts = extract_every_user(Arc::new(client.clone()), 4).await;
        let truth = sim.truth();
        assert_eq!(counts, truth, "{users} users");
        assert_eq!(counts.values().sum::<u64>(), users);
        // One page per partition at least, and no empty trailing pages.
        let expected_pages: u64 = UserStatus::ALL
            .iter()
            .map(|s| truth.get(s).copied().unwrap_or(0).div_ceil(200).max(1))
            .sum();
        assert_eq!(sim.stats().pages, expected_pages, "{users} users");
        assert_eq!(client.stats().pages, expected_pages);
        assert_eq!(client.stats().users, users);
        if users == 5_000 {
            assert!(truth.len() == 8, "every status is present: {truth:?}");
        }
        sim.shutdown().await;
    }
}

#[tokio::test]
async fn the_plain_list_leaves_out_deprovisioned_users() {
    let sim = start(1_000, 3).await;
    let client = Arc::new(OktaClient::new(sim.client_config()).unwrap());
    let users: Vec<_> = list_users(client.clone(), UserQuery::all().with_limit(7))
        .try_collect()
        .await
        .unwrap();
    let truth = sim.truth();
    let deprovisioned = truth[&UserStatus::Deprovisioned];
    assert!(deprovisioned > 0);
    assert_eq!(users.len() as u64, 1_000 - deprovisioned);
    assert!(users.iter().all(|u| u.status != UserStatus::Deprovisioned));
    assert_eq!(client.stats().pages, (1_000 - deprovisioned).div_ceil(7));
}

#[tokio::test]
async fn filter_and_search_reach_the_server_intact() {
    let sim = start(3_000, 11).await;
    let client = Arc::new(OktaClient::new(sim.client_config()).unwrap());
    let truth = sim.truth();

    let filter = r#"status eq "LOCKED_OUT" or status eq "RECOVERY""#;
    let users: Vec<_> = list_users(client.clone(), UserQuery::filter(filter).with_limit(20))
        .try_collect()
        .await
        .unwrap();
    assert_eq!(
        users.len() as u64,
        truth[&UserStatus::LockedOut] + truth[&UserStatus::Recovery]
    );

    // Search values are case-insensitive.
    let users: Vec<_> = list_users(
        client.clone(),
        UserQuery::search(r#"status eq "suspended""#),
    )
    .try_collect()
    .await
    .unwrap();
    assert_eq!(users.len() as u64, truth[&UserStatus::Suspended]);
    assert!(users.iter().all(|u| u.status == UserStatus::Suspended));

    // An expression the Users API does not support is a permanent 400 E0000031.
    let err = list_users(client.clone(), UserQuery::filter(r#"status ne "ACTIVE""#))
        .try_collect::<Vec<_>>()
        .await
        .unwrap_err();
    match &err {
        Error::Api {
            status, error_code, ..
        } => {
            assert_eq!(*status, 400);
            assert_eq!(error_code.as_deref(), Some("E0000031"));
        }
        other => panic!("{other:?}"),
    }
    assert!(!err.is_retryable());
}

#[tokio::test]
async fn link_headers_are_separate_absolute_and_self_first() {
    let sim = start(450, 5).await;
    let url = format!(
        "{}/api/v1/users?limit=200&filter=status%20eq%20%22ACTIVE%22",
        sim.url()
    );
    let response = reqwest::Client::new()
        .get(&url)
        .header("Authorization", format!("SSWS {}", sim.token()))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let headers = response.headers();
    let links: Vec<&str> = headers
        .get_all("link")
        .iter()
        .map(|v| v.to_str().unwrap())
        .collect();
    assert_eq!(links.len(), 2, "{links:?}");
    assert_eq!(links[0], format!("<{url}>; rel=\"self\""));
    assert!(links[1].starts_with(&format!("<{}/api/v1/users?after=00u", sim.url())));
    assert!(links[1].ends_with("; rel=\"next\""));
    assert!(links[1].contains("limit=200") && links[1].contains("filter=status+eq+%22ACTIVE%22"));
    for name in [
        "date",
        "x-okta-request-id",
        "x-rate-limit-limit",
        "x-rate-limit-remaining",
        "x-rate-limit-reset",
    ] {
        assert!(headers.contains_key(name), "missing {name}");
    }
    let date = headers["date"].to_str().unwrap();
    assert!(date.ends_with(" GMT") && httpdate::parse_http_date(date).is_ok());

    // The Python SDK sends `SSWS<token>` without a space; that works too.
    let response = reqwest::Client::new()
        .get(format!("{}/api/v1/users", sim.url()))
        .header("Authorization", format!("SSWS{}", sim.token()))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn a_new_epoch_changes_statuses_and_adds_users() {
    let sim = start(2_000, 9).await;
    let client: Arc<dyn UserDirectory> = Arc::new(OktaClient::new(sim.client_config()).unwrap());
    let before = extract_every_user(client.clone(), 8).await;
    assert_eq!(before, sim.truth());
    sim.set_epoch(3);
    let after = extract_every_user(client, 8).await;
    assert_eq!(after, sim.truth());
    assert_ne!(before, after);
    assert!(after.values().sum::<u64>() > 2_000);
}

/// A 1-second window of 30 requests stands in for Okta's minute (`RateLimitConfig::window`),
/// so that pacing and waiting for resets happen several times within a few seconds.
#[tokio::test]
async fn pacing_stays_below_the_limit_without_any_429() {
    let mut config = SimulatorConfig::with_users(20_000);
    config.rate_limit = Some(RateLimitConfig {
        limit: 30,
        window: Duration::from_secs(1),
    });
    let sim = Simulator::start(config).await.unwrap();
    let client = OktaClient::new(sim.client_config()).unwrap();
    let counts = extract_every_user(Arc::new(client.clone()), 8).await;
    assert_eq!(counts, sim.truth());
    let server = sim.stats();
    assert_eq!(server.rate_limited, 0, "{server:?}");
    assert!(
        server.requests > 90,
        "enough requests to span several windows"
    );
    let stats = client.stats();
    assert_eq!(stats.rate_limited, 0);
    assert!(
        stats.rate_limit_wait > Duration::from_millis(500),
        "the client had to pace: {stats:?}"
    );
    let snapshot = client.rate_limiter().snapshot().unwrap();
    assert_eq!(snapshot.limit, 30);
}
