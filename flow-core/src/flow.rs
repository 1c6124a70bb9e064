//! The [`Flow`] trait: one typed unit of work with a stable display name.

use async_trait::async_trait;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::{FlowContext, FlowError};

/// A flow, as in Okta Workflows: typed input, typed output, a stable name, and a body that
/// uses its [`FlowContext`] to run steps, call helper flows and stream items to them.
///
/// Whether a flow is a *main* flow or a *helper* flow depends only on how it is started: by the
/// engine or a schedule (main), or by another flow (helper).
///
/// Connections (HTTP clients, mailers, tables) are fields of the flow value, given when it is
/// built, never looked up by name at run time.
///
/// ```
/// use flow_core::{async_trait, Flow, FlowContext, FlowError};
///
/// struct Double;
///
/// #[async_trait]
/// impl Flow for Double {
///     type Input = u64;
///     type Output = u64;
///     fn name(&self) -> &str {
///         "[helper] Double"
///     }
///     async fn run(&self, ctx: &FlowContext, n: u64) -> Result<u64, FlowError> {
///         ctx.step("Multiply", async { Ok::<_, FlowError>(n * 2) }).await
///     }
/// }
/// ```
#[async_trait]
pub trait Flow: Send + Sync + 'static {
    /// What the flow is given. Recorded in history as JSON (secrets redacted).
    type Input: Serialize + DeserializeOwned + Send + 'static;
    /// What the flow returns. Recorded in history as JSON (secrets redacted).
    type Output: Serialize + DeserializeOwned + Send + 'static;

    /// The stable display name, e.g. `[helper] Extract All Users`. Unique within an engine.
    fn name(&self) -> &str;

    /// The flow's body.
    async fn run(&self, ctx: &FlowContext, input: Self::Input) -> Result<Self::Output, FlowError>;
}
