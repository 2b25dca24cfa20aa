//! `/api/v1/plans`: the plans a store can be created on — each one's quota and volume
//! sizes, and which is the default — so a form can offer a choice instead of a free-text
//! field. Any role may read them; they come from the store settings the API was started with.

use std::sync::Arc;

use poem_openapi::OpenApi;

use super::ApiTags;
use crate::auth::Auth;
use crate::body::JsonBody;
use crate::problem::ApiError;
use crate::state::AppState;
use crate::views::{PlanList, PlanView};

/// Plans.
#[derive(Debug)]
pub struct PlansApi(pub Arc<AppState>);

#[OpenApi(prefix_path = "/api/v1", tag = "ApiTags::Plans")]
impl PlansApi {
    /// The plans, by name; `default` marks the plan of a store created without one.
    #[oai(path = "/plans", method = "get", operation_id = "list_plans")]
    async fn list_plans(&self, _auth: Auth) -> Result<JsonBody<PlanList>, ApiError> {
        let stores = &self.0.settings.stores;
        Ok(JsonBody(PlanList {
            items: stores
                .plans
                .iter()
                .map(|(name, plan)| PlanView::new(name, plan, *name == stores.default_plan))
                .collect(),
        }))
    }
}
