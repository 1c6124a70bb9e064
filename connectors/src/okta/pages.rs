//! Paging through `/api/v1/users`: the [`UserDirectory`] trait (one page at a time) and the
//! streams built on it, including [`list_every_user`], which extracts every user exactly once
//! with several cursors in parallel.

use std::collections::HashSet;
use std::sync::Arc;

use async_trait::async_trait;
use futures::stream::{self, Stream, StreamExt};
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, Semaphore};
use tokio::task::JoinSet;

use super::{Error, User, UserStatus};

/// The largest page Okta serves for `/api/v1/users` (also its default).
pub const MAX_PAGE_SIZE: u32 = 200;

/// Which users to list: everything (`all`, which Okta returns without `DEPROVISIONED` users),
/// a `filter` expression (strongly consistent) or a `search` expression (eventually
/// consistent), and the page size.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserQuery {
    filter: Option<String>,
    search: Option<String>,
    limit: u32,
}

impl UserQuery {
    /// The plain list. Okta leaves out `DEPROVISIONED` users here.
    pub fn all() -> Self {
        UserQuery {
            filter: None,
            search: None,
            limit: MAX_PAGE_SIZE,
        }
    }

    /// `filter=<expression>`, e.g. `status eq "LOCKED_OUT"`. Reads the most up-to-date data
    /// and includes `DEPROVISIONED` users.
    pub fn filter(expression: impl Into<String>) -> Self {
        UserQuery {
            filter: Some(expression.into()),
            ..Self::all()
        }
    }

    /// `search=<expression>`. Richer operators, but served from an eventually consistent
    /// replica.
    pub fn search(expression: impl Into<String>) -> Self {
        UserQuery {
            search: Some(expression.into()),
            ..Self::all()
        }
    }

    /// `filter=status eq "<STATUS>"`.
    pub fn status(status: UserStatus) -> Self {
        Self::filter(format!("status eq \"{}\"", status.as_str()))
    }

    /// The same query with another page size, clamped to 1..=[`MAX_PAGE_SIZE`].
    pub fn with_limit(mut self, limit: u32) -> Self {
        self.limit = limit.clamp(1, MAX_PAGE_SIZE);
        self
    }

    /// The filter expression, if any.
    pub fn filter_expression(&self) -> Option<&str> {
        self.filter.as_deref()
    }

    /// The search expression, if any.
    pub fn search_expression(&self) -> Option<&str> {
        self.search.as_deref()
    }

    /// The page size.
    pub fn limit(&self) -> u32 {
        self.limit
    }

    /// The query string parameters, in the order they are sent.
    pub(crate) fn query_pairs(&self) -> Vec<(&'static str, String)> {
        let mut pairs = vec![("limit", self.limit.to_string())];
        if let Some(filter) = &self.filter {
            pairs.push(("filter", filter.clone()));
        }
        if let Some(search) = &self.search {
            pairs.push(("search", search.clone()));
        }
        pairs
    }
}

/// The absolute URL of the next page, exactly as the server gave it in `Link: <…>; rel="next"`.
/// Opaque; serializable so that an extraction can be checkpointed and resumed.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct NextLink(String);

impl NextLink {
    /// Wraps a URL taken from a `Link` header (or a checkpoint).
    pub fn new(url: impl Into<String>) -> Self {
        NextLink(url.into())
    }

    /// The URL.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// What to fetch: the first page of a query, or the page a `next` link points to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PageRequest {
    /// The first page of a query.
    First(UserQuery),
    /// A following page.
    Next(NextLink),
}

/// One page of users and the link to the next page (`None` on the last page).
#[derive(Clone, Debug, PartialEq)]
pub struct UserPage {
    /// The users of this page, in server order.
    pub users: Vec<User>,
    /// Where the next page is, if there is one.
    pub next: Option<NextLink>,
}

/// A source of user pages. [`OktaClient`](super::OktaClient) is the real one; tests and
/// demos can put anything behind it.
#[async_trait]
pub trait UserDirectory: Send + Sync {
    /// Fetches one page.
    async fn fetch_page(&self, request: &PageRequest) -> Result<UserPage, Error>;
}

/// The pages of one query, following `next` links until a page has none.
///
/// A server that hands out a `next` link that was already followed gets
/// [`Error::RepeatedCursor`] instead of an endless loop. The stream ends after the first error.
pub fn list_pages<D>(
    directory: Arc<D>,
    query: UserQuery,
) -> impl Stream<Item = Result<UserPage, Error>> + Send + 'static
where
    D: UserDirectory + ?Sized + 'static,
{
    list_pages_from(directory, PageRequest::First(query))
}

/// [`list_pages`] starting at any page: the first page of a query, or a `next` link kept from
/// an earlier extraction (a checkpoint), which then counts as already followed.
pub fn list_pages_from<D>(
    directory: Arc<D>,
    start: PageRequest,
) -> impl Stream<Item = Result<UserPage, Error>> + Send + 'static
where
    D: UserDirectory + ?Sized + 'static,
{
    let mut seen = HashSet::<NextLink>::new();
    if let PageRequest::Next(link) = &start {
        seen.insert(link.clone());
    }
    stream::unfold((Some(start), seen), move |(request, mut seen)| {
        let directory = Arc::clone(&directory);
        async move {
            let request = request?;
            match directory.fetch_page(&request).await {
                Ok(page) => match &page.next {
                    None => Some((Ok(page), (None, seen))),
                    Some(next) if !seen.insert(next.clone()) => {
                        let err = Error::RepeatedCursor {
                            url: next.as_str().to_owned(),
                        };
                        Some((Err(err), (None, seen)))
                    }
                    Some(next) => {
                        let request = PageRequest::Next(next.clone());
                        Some((Ok(page), (Some(request), seen)))
                    }
                },
                Err(err) => Some((Err(err), (None, seen))),
            }
        }
    })
}

/// The users of one query, one by one (see [`list_pages`]).
pub fn list_users<D>(
    directory: Arc<D>,
    query: UserQuery,
) -> impl Stream<Item = Result<User, Error>> + Send + 'static
where
    D: UserDirectory + ?Sized + 'static,
{
    list_pages(directory, query).flat_map(|page| match page {
        Ok(page) => stream::iter(page.users.into_iter().map(Ok)).left_stream(),
        Err(err) => stream::iter(std::iter::once(Err(err))).right_stream(),
    })
}

/// One `filter=status eq "X"` query per documented status: together they cover every user
/// exactly once. Used by [`list_every_user`].
///
/// Why this shape:
/// - the plain list leaves out `DEPROVISIONED` users, so it cannot count them;
/// - `filter` reads the most up-to-date data, whereas `search` is eventually consistent;
/// - a user has exactly one status, so the partitions are disjoint and their cursors can run
///   in parallel without de-duplication.
///
/// Limits: a status Okta adds later is in no partition (compare the total with a plain-list
/// count if that matters), and a user whose status changes during the extraction can be seen
/// twice or not at all — the same is true of any paged read, since Okta has no snapshots.
/// The partitions are also unbalanced (`ACTIVE` is usually most users), so the parallelism
/// mostly shortens the tail.
pub fn every_user_partitions() -> Vec<UserQuery> {
    UserStatus::ALL.into_iter().map(UserQuery::status).collect()
}

/// Every user of the org, `DEPROVISIONED` ones included, as pages from
/// [`every_user_partitions`] fetched by up to `concurrency` cursors at once.
/// See [`list_partitions`].
pub fn list_every_user<D>(
    directory: Arc<D>,
    concurrency: usize,
) -> impl Stream<Item = Result<UserPage, Error>> + Send + 'static
where
    D: UserDirectory + ?Sized + 'static,
{
    list_partitions(directory, every_user_partitions(), concurrency)
}

/// The pages of several queries, with up to `concurrency` (at least 1) cursors running at
/// once, each in its own tokio task (so parsing runs in parallel too). Pages come in arrival
/// order. An error ends only its own cursor; the others go on. Dropping the stream stops all
/// cursors. Must be polled inside a tokio runtime.
pub fn list_partitions<D>(
    directory: Arc<D>,
    partitions: Vec<UserQuery>,
    concurrency: usize,
) -> impl Stream<Item = Result<UserPage, Error>> + Send + 'static
where
    D: UserDirectory + ?Sized + 'static,
{
    let concurrency = concurrency.max(1);
    let start = async move {
        let (tx, rx) = mpsc::channel::<Result<UserPage, Error>>(concurrency * 2);
        let permits = Arc::new(Semaphore::new(concurrency));
        let mut tasks = JoinSet::new();
        for query in partitions {
            let tx = tx.clone();
            let permits = Arc::clone(&permits);
            let directory = Arc::clone(&directory);
            tasks.spawn(async move {
                let Ok(_permit) = permits.acquire_owned().await else {
                    return;
                };
                let mut pages = std::pin::pin!(list_pages(directory, query));
                while let Some(page) = pages.next().await {
                    if tx.send(page).await.is_err() {
                        return; // the stream was dropped
                    }
                }
            });
        }
        drop(tx);
        // The JoinSet lives as long as the stream: dropping it aborts the cursors.
        stream::unfold((rx, tasks), |(mut rx, tasks)| async move {
            let page = rx.recv().await?;
            Some((page, (rx, tasks)))
        })
    };
    stream::once(start).flatten()
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::sync::Mutex;

    use futures::TryStreamExt;

    use super::*;

    /// Serves fixed pages keyed by the request; records requests.
    struct Scripted {
        pages: HashMap<String, Result<UserPage, ()>>,
        calls: Mutex<Vec<String>>,
    }

    fn key(request: &PageRequest) -> String {
        match request {
            PageRequest::First(q) => format!("first:{:?}", q.filter_expression()),
            PageRequest::Next(link) => link.as_str().to_owned(),
        }
    }

    #[async_trait]
    impl UserDirectory for Scripted {
        async fn fetch_page(&self, request: &PageRequest) -> Result<UserPage, Error> {
            let k = key(request);
            self.calls.lock().unwrap().push(k.clone());
            match self.pages.get(&k) {
                Some(Ok(page)) => Ok(page.clone()),
                Some(Err(())) | None => Err(Error::invalid_response(&k, "scripted failure")),
            }
        }
    }

    fn page(ids: &[&str], next: Option<&str>) -> UserPage {
        UserPage {
            users: ids
                .iter()
                .map(|id| User::new(*id, UserStatus::Active))
                .collect(),
            next: next.map(NextLink::new),
        }
    }

    #[tokio::test]
    async fn follows_next_links_until_the_last_page() {
        let dir = Arc::new(Scripted {
            pages: HashMap::from([
                (
                    "first:None".into(),
                    Ok(page(&["a", "b"], Some("https://o/2"))),
                ),
                ("https://o/2".into(), Ok(page(&["c"], Some("https://o/3")))),
                ("https://o/3".into(), Ok(page(&[], None))),
            ]),
            calls: Mutex::default(),
        });
        let users: Vec<User> = list_users(dir.clone(), UserQuery::all())
            .try_collect()
            .await
            .unwrap();
        let ids: Vec<_> = users.iter().map(|u| u.id.as_str()).collect();
        assert_eq!(ids, ["a", "b", "c"]);
        assert_eq!(dir.calls.lock().unwrap().len(), 3);
    }

    #[tokio::test]
    async fn a_repeated_next_link_is_an_error_not_a_loop() {
        let dir = Arc::new(Scripted {
            pages: HashMap::from([
                ("first:None".into(), Ok(page(&["a"], Some("https://o/2")))),
                ("https://o/2".into(), Ok(page(&["b"], Some("https://o/2")))),
            ]),
            calls: Mutex::default(),
        });
        let results: Vec<Result<User, Error>> =
            list_users(dir.clone(), UserQuery::all()).collect().await;
        assert!(matches!(
            results.last(),
            Some(Err(Error::RepeatedCursor { url })) if url == "https://o/2"
        ));
        assert_eq!(dir.calls.lock().unwrap().len(), 2);
    }

    #[tokio::test]
    async fn partitions_run_to_the_end_despite_one_failing() {
        let mut pages = HashMap::new();
        for status in UserStatus::ALL {
            let k = format!("first:Some(\"status eq \\\"{}\\\"\")", status.as_str());
            pages.insert(k, Ok(page(&[status.as_str()], None)));
        }
        pages.insert(
            "first:Some(\"status eq \\\"SUSPENDED\\\"\")".into(),
            Err(()),
        );
        let dir = Arc::new(Scripted {
            pages,
            calls: Mutex::default(),
        });
        let results: Vec<_> = list_every_user(dir.clone(), 3).collect().await;
        assert_eq!(results.len(), 8);
        assert_eq!(results.iter().filter(|r| r.is_err()).count(), 1);
        let mut seen: Vec<String> = results
            .into_iter()
            .filter_map(Result::ok)
            .flat_map(|p| p.users)
            .map(|u| u.id)
            .collect();
        seen.sort();
        assert_eq!(seen.len(), 7);
        assert!(!seen.contains(&"SUSPENDED".to_owned()));
    }

    #[test]
    fn queries() {
        let q = UserQuery::status(UserStatus::LockedOut).with_limit(1000);
        assert_eq!(q.filter_expression(), Some("status eq \"LOCKED_OUT\""));
        assert_eq!(q.limit(), 200);
        assert_eq!(UserQuery::all().with_limit(0).limit(), 1);
        assert_eq!(every_user_partitions().len(), 8);
        let link: NextLink = serde_json::from_str("\"https://o/x?after=1\"").unwrap();
        assert_eq!(link.as_str(), "https://o/x?after=1");
    }
}
