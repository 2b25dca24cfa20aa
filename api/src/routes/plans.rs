//! `/api/v1/plans`: the plans a store can be created on — each one's quota and volume
//! sizes, and which is the default — so a form can offer a choice instead of a free-text
//! field; `/api/v1/channels`: the release channels (each one's current release and pins)
//! and the fleet's version spread. Any role may read them; plans and channels come from the
//! store settings the API was started with.

use std::sync::Arc;

use poem_openapi::OpenApi;

use super::ApiTags;
use crate::auth::Auth;
use crate::body::JsonBody;
use crate::problem::ApiError;
use crate::state::AppState;
use crate::views::{ChannelList, ChannelView, PlanList, PlanView, VersionCountView};

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

    /// The release channels, by name (`default` marks a new store's), and the fleet's version
    /// spread: how many live stores run each release of each channel. A store moves to its
    /// channel's current release with `POST /api/v1/stores/{id}/upgrade`.
    #[oai(path = "/channels", method = "get", operation_id = "list_channels")]
    async fn list_channels(&self, _auth: Auth) -> Result<JsonBody<ChannelList>, ApiError> {
        let stores = &self.0.settings.stores;
        let channels = stores.channels();
        let spread = urumi_store::db::version_spread(&self.0.pool).await?;
        Ok(JsonBody(ChannelList {
            items: channels
                .iter()
                .map(|(name, c)| ChannelView::new(name, c, *name == stores.default_channel))
                .collect(),
            versions: spread
                .into_iter()
                .map(|v| VersionCountView {
                    current: channels
                        .get(&v.channel)
                        .is_some_and(|c| v.version.as_deref() == Some(c.version.as_str())),
                    channel: v.channel,
                    version: v.version,
                    stores: v.stores,
                })
                .collect(),
        }))
    }
}
