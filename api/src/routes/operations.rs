//! `/api/v1/operations`: bulk operations — preview (dry run), start, watch, pause, resume,
//! approve, cancel. An operation is carried out by a parent run (`operation@1`) that starts
//! its targets at most `max_concurrency` at a time in the bulk lane (`urumi_ops`).

use std::sync::Arc;

use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, OpenApi};
use uuid::Uuid;

use super::{ApiTags, parse_uuid_cursor};
use crate::auth::{Auth, Role};
use crate::body::JsonBody;
use crate::problem::ApiError;
use crate::state::AppState;
use crate::views::operations::{
    CreateOperation, Operation, OperationCreated, OperationPage, OperationPreview, OperationTarget,
    OperationTargetPage, TargetState,
};

/// Operations: an operator's one request over every run a selector matches.
#[derive(Debug)]
pub struct OperationsApi(pub Arc<AppState>);

#[derive(Debug, ApiResponse)]
enum Created {
    /// A dry run: `preview` says what would happen; nothing was started.
    #[oai(status = 200)]
    Preview(JsonBody<OperationCreated>),
    /// The operation was created (`operation`) and its parent run queued.
    #[oai(status = 201)]
    Created(JsonBody<OperationCreated>),
}

#[derive(Debug, ApiResponse)]
enum Steered {
    /// Accepted; the operation as it is now (its parent run acts on it within a second).
    #[oai(status = 202)]
    Accepted(JsonBody<Operation>),
}

impl OperationsApi {
    async fn steer(
        &self,
        auth: &Auth,
        id: Uuid,
        control: urumi_ops::Control,
    ) -> Result<Steered, ApiError> {
        auth.0.require(Role::Operator)?;
        let op = self.0.ops.control(id, control, auth.0.actor()).await?;
        tracing::info!(operation = %id, ?control, actor = auth.0.actor(), "operation steered");
        Ok(Steered::Accepted(JsonBody(Operation::from(&op))))
    }
}

#[OpenApi(prefix_path = "/api/v1", tag = "ApiTags::Operations")]
impl OperationsApi {
    /// Act on every run a selector matches: retry, cancel, rerun (from a step), repair or
    /// delete, at most `max_concurrency` at a time, with an optional canary and failure
    /// budget. With `dry_run: true`, answers how many runs match and what would happen to
    /// the first 20, and starts nothing. Needs `operator` (`admin` for `delete`).
    #[oai(
        path = "/operations",
        method = "post",
        operation_id = "create_operation"
    )]
    async fn create_operation(
        &self,
        auth: Auth,
        body: Json<CreateOperation>,
    ) -> Result<Created, ApiError> {
        let spec = body.0.to_spec()?;
        auth.0.require(if spec.action.deletes() {
            Role::Admin
        } else {
            Role::Operator
        })?;
        if body.0.dry_run {
            let preview = self.0.ops.preview(&spec, auth.0.actor()).await?;
            return Ok(Created::Preview(JsonBody(OperationCreated {
                operation: None,
                preview: Some(OperationPreview::from(&preview)),
            })));
        }
        let actor = auth.0.actor();
        let op = self.0.ops.create(&spec, actor, actor).await?;
        tracing::info!(operation = %op.id, action = %spec.action, matched = op.progress.matched, actor, "operation created");
        Ok(Created::Created(JsonBody(OperationCreated {
            operation: Some(Operation::from(&op)),
            preview: None,
        })))
    }

    /// Operations, newest first.
    #[oai(path = "/operations", method = "get", operation_id = "list_operations")]
    async fn list_operations(
        &self,
        _auth: Auth,
        /// `next_cursor` of the previous page.
        cursor: Query<Option<String>>,
        /// Page size, 1 to 200.
        #[oai(
            default = "super::default_limit",
            validator(minimum(value = "1"), maximum(value = "200"))
        )]
        limit: Query<i64>,
    ) -> Result<JsonBody<OperationPage>, ApiError> {
        let before = parse_uuid_cursor(cursor.0.as_deref())?;
        let ops = self.0.ops.list(before, limit.0 + 1).await?;
        let more = ops.len() as i64 > limit.0;
        let ops = &ops[..ops.len().min(limit.0 as usize)];
        Ok(JsonBody(OperationPage {
            items: ops.iter().map(Operation::from).collect(),
            next_cursor: more.then(|| ops.last().map(|o| o.id.to_string())).flatten(),
        }))
    }

    /// An operation with its progress: matched, pending, running, succeeded, failed, skipped.
    #[oai(
        path = "/operations/:id",
        method = "get",
        operation_id = "get_operation"
    )]
    async fn get_operation(
        &self,
        _auth: Auth,
        id: Path<Uuid>,
    ) -> Result<JsonBody<Operation>, ApiError> {
        Ok(JsonBody(Operation::from(&self.0.ops.get(id.0).await?)))
    }

    /// An operation's targets in the order they start, each with its state, the run started
    /// for it and why it was skipped or failed.
    #[oai(
        path = "/operations/:id/targets",
        method = "get",
        operation_id = "list_operation_targets"
    )]
    async fn list_operation_targets(
        &self,
        _auth: Auth,
        id: Path<Uuid>,
        state: Query<Option<TargetState>>,
        /// `next_cursor` of the previous page.
        cursor: Query<Option<String>>,
        /// Page size, 1 to 200.
        #[oai(
            default = "super::default_limit",
            validator(minimum(value = "1"), maximum(value = "200"))
        )]
        limit: Query<i64>,
    ) -> Result<JsonBody<OperationTargetPage>, ApiError> {
        let after = cursor
            .0
            .as_deref()
            .map(|c| {
                c.parse::<i32>().map_err(|_| {
                    ApiError::bad_request(format!(
                        "malformed cursor {c:?}; pass a next_cursor this API returned"
                    ))
                })
            })
            .transpose()?;
        let targets = self
            .0
            .ops
            .targets(id.0, state.0.map(Into::into), after, limit.0 + 1)
            .await?;
        let more = targets.len() as i64 > limit.0;
        let targets = &targets[..targets.len().min(limit.0 as usize)];
        Ok(JsonBody(OperationTargetPage {
            items: targets.iter().map(OperationTarget::from).collect(),
            next_cursor: more
                .then(|| targets.last().map(|t| t.position.to_string()))
                .flatten(),
        }))
    }

    /// Pause: no target starts until resumed; started ones run to their end. Needs `operator`.
    #[oai(
        path = "/operations/:id/pause",
        method = "post",
        operation_id = "pause_operation"
    )]
    async fn pause_operation(&self, auth: Auth, id: Path<Uuid>) -> Result<Steered, ApiError> {
        self.steer(&auth, id.0, urumi_ops::Control::Pause).await
    }

    /// Resume a paused operation. Needs `operator`.
    #[oai(
        path = "/operations/:id/resume",
        method = "post",
        operation_id = "resume_operation"
    )]
    async fn resume_operation(&self, auth: Auth, id: Path<Uuid>) -> Result<Steered, ApiError> {
        self.steer(&auth, id.0, urumi_ops::Control::Resume).await
    }

    /// Approve an operation whose canary succeeded: the rest of its targets go. Needs
    /// `operator`.
    #[oai(
        path = "/operations/:id/approve",
        method = "post",
        operation_id = "approve_operation"
    )]
    async fn approve_operation(&self, auth: Auth, id: Path<Uuid>) -> Result<Steered, ApiError> {
        self.steer(&auth, id.0, urumi_ops::Control::Approve).await
    }

    /// Cancel: pending targets are skipped; started ones run to their end (cancel those runs
    /// with a `cancel` operation if need be). Needs `operator`.
    #[oai(
        path = "/operations/:id/cancel",
        method = "post",
        operation_id = "cancel_operation"
    )]
    async fn cancel_operation(&self, auth: Auth, id: Path<Uuid>) -> Result<Steered, ApiError> {
        self.steer(&auth, id.0, urumi_ops::Control::Cancel).await
    }
}
