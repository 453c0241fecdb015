//! The path table: etcd 3.4/3.5's grpc-gateway paths (`google.api.http`
//! options of etcd's rpc.proto, v3lock.proto and v3election.proto), each a
//! POST with the request message as its JSON body, under `/v3`, `/v3beta`
//! and `/v3alpha`; plus the health, version and metrics endpoints and a
//! fallback that answers HTTP clients 404 and gRPC clients Unimplemented.

use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use http::StatusCode;
use witan_proto::etcdserverpb::auth_client::AuthClient;
use witan_proto::etcdserverpb::cluster_client::ClusterClient;
use witan_proto::etcdserverpb::kv_client::KvClient;
use witan_proto::etcdserverpb::lease_client::LeaseClient;
use witan_proto::etcdserverpb::maintenance_client::MaintenanceClient;
use witan_proto::etcdserverpb::watch_client::WatchClient;
use witan_proto::etcdserverpb::{
    AlarmRequest, AuthDisableRequest, AuthEnableRequest, AuthRoleAddRequest, AuthRoleDeleteRequest,
    AuthRoleGetRequest, AuthRoleGrantPermissionRequest, AuthRoleListRequest,
    AuthRoleRevokePermissionRequest, AuthStatusRequest, AuthUserAddRequest,
    AuthUserChangePasswordRequest, AuthUserDeleteRequest, AuthUserGetRequest,
    AuthUserGrantRoleRequest, AuthUserListRequest, AuthUserRevokeRoleRequest, AuthenticateRequest,
    CompactionRequest, DefragmentRequest, DeleteRangeRequest, HashKvRequest, HashRequest,
    LeaseGrantRequest, LeaseKeepAliveRequest, LeaseLeasesRequest, LeaseRevokeRequest,
    LeaseTimeToLiveRequest, MemberAddRequest, MemberListRequest, MemberPromoteRequest,
    MemberRemoveRequest, MemberUpdateRequest, MoveLeaderRequest, PutRequest, RangeRequest,
    SnapshotRequest, StatusRequest, TxnRequest, WatchRequest,
};
use witan_proto::v3electionpb::election_client::ElectionClient;
use witan_proto::v3electionpb::{CampaignRequest, LeaderRequest, ProclaimRequest, ResignRequest};
use witan_proto::v3lockpb::lock_client::LockClient;
use witan_proto::v3lockpb::{LockRequest, UnlockRequest};

use super::rpc::RequestEnd;
use super::{health, Gateway};

/// The prefixes etcd's gateway answers on (`/v3beta` and `/v3alpha` are
/// older clients' names for the same API).
const PREFIXES: [&str; 3] = ["/v3", "/v3beta", "/v3alpha"];

/// A unary route: `client` type, its method, the request message type.
macro_rules! unary {
    ($client:ident, $method:ident, $request:ty) => {
        post(|State(gw): State<Gateway>, request: Request| async move {
            let (parts, body) = request.into_parts();
            let gw = gw.on_behalf_of(&parts);
            gw.unary(body, |grpc, request: $request| async move {
                $client::new(grpc)
                    .max_decoding_message_size(usize::MAX)
                    .$method(request)
                    .await
            })
            .await
        })
    };
}

/// A server-streaming route.
macro_rules! server_stream {
    ($client:ident, $method:ident, $request:ty) => {
        post(|State(gw): State<Gateway>, request: Request| async move {
            let (parts, body) = request.into_parts();
            let gw = gw.on_behalf_of(&parts);
            gw.server_stream(body, |grpc, request: $request| async move {
                $client::new(grpc)
                    .max_decoding_message_size(usize::MAX)
                    .$method(request)
                    .await
            })
            .await
        })
    };
}

/// A bidirectional-streaming route.
macro_rules! bidi_stream {
    ($client:ident, $method:ident, $request:ty, $end:expr) => {
        post(|State(gw): State<Gateway>, request: Request| async move {
            let (parts, body) = request.into_parts();
            let gw = gw.on_behalf_of(&parts);
            gw.bidi_stream(
                body,
                $end,
                |grpc, requests: tokio_stream::wrappers::ReceiverStream<$request>| async move {
                    $client::new(grpc)
                        .max_decoding_message_size(usize::MAX)
                        .$method(requests)
                        .await
                },
            )
            .await
        })
    };
}

/// Every etcd API path, relative to a prefix.
fn api() -> Router<Gateway> {
    Router::new()
        .route("/kv/range", unary!(KvClient, range, RangeRequest))
        .route("/kv/put", unary!(KvClient, put, PutRequest))
        .route(
            "/kv/deleterange",
            unary!(KvClient, delete_range, DeleteRangeRequest),
        )
        .route("/kv/txn", unary!(KvClient, txn, TxnRequest))
        .route(
            "/kv/compaction",
            unary!(KvClient, compact, CompactionRequest),
        )
        .route(
            "/watch",
            bidi_stream!(WatchClient, watch, WatchRequest, RequestEnd::WithResponse),
        )
        .route(
            "/lease/grant",
            unary!(LeaseClient, lease_grant, LeaseGrantRequest),
        )
        .route(
            "/kv/lease/revoke",
            unary!(LeaseClient, lease_revoke, LeaseRevokeRequest),
        )
        .route(
            "/lease/revoke",
            unary!(LeaseClient, lease_revoke, LeaseRevokeRequest),
        )
        .route(
            "/lease/keepalive",
            bidi_stream!(
                LeaseClient,
                lease_keep_alive,
                LeaseKeepAliveRequest,
                RequestEnd::AfterBody
            ),
        )
        .route(
            "/kv/lease/timetolive",
            unary!(LeaseClient, lease_time_to_live, LeaseTimeToLiveRequest),
        )
        .route(
            "/lease/timetolive",
            unary!(LeaseClient, lease_time_to_live, LeaseTimeToLiveRequest),
        )
        .route(
            "/kv/lease/leases",
            unary!(LeaseClient, lease_leases, LeaseLeasesRequest),
        )
        .route(
            "/lease/leases",
            unary!(LeaseClient, lease_leases, LeaseLeasesRequest),
        )
        .route(
            "/cluster/member/add",
            unary!(ClusterClient, member_add, MemberAddRequest),
        )
        .route(
            "/cluster/member/remove",
            unary!(ClusterClient, member_remove, MemberRemoveRequest),
        )
        .route(
            "/cluster/member/update",
            unary!(ClusterClient, member_update, MemberUpdateRequest),
        )
        .route(
            "/cluster/member/list",
            unary!(ClusterClient, member_list, MemberListRequest),
        )
        .route(
            "/cluster/member/promote",
            unary!(ClusterClient, member_promote, MemberPromoteRequest),
        )
        .route(
            "/maintenance/alarm",
            unary!(MaintenanceClient, alarm, AlarmRequest),
        )
        .route(
            "/maintenance/status",
            unary!(MaintenanceClient, status, StatusRequest),
        )
        .route(
            "/maintenance/defragment",
            unary!(MaintenanceClient, defragment, DefragmentRequest),
        )
        // etcd 3.4 maps both Hash and HashKV to this path and serves Hash;
        // 3.5 moved HashKV to its own path.
        .route(
            "/maintenance/hash",
            unary!(MaintenanceClient, hash, HashRequest),
        )
        .route(
            "/maintenance/hashkv",
            unary!(MaintenanceClient, hash_kv, HashKvRequest),
        )
        .route(
            "/maintenance/snapshot",
            server_stream!(MaintenanceClient, snapshot, SnapshotRequest),
        )
        .route(
            "/maintenance/transfer-leadership",
            unary!(MaintenanceClient, move_leader, MoveLeaderRequest),
        )
        .route("/lock/lock", unary!(LockClient, lock, LockRequest))
        .route("/lock/unlock", unary!(LockClient, unlock, UnlockRequest))
        .route(
            "/election/campaign",
            unary!(ElectionClient, campaign, CampaignRequest),
        )
        .route(
            "/election/proclaim",
            unary!(ElectionClient, proclaim, ProclaimRequest),
        )
        .route(
            "/election/leader",
            unary!(ElectionClient, leader, LeaderRequest),
        )
        .route(
            "/election/observe",
            server_stream!(ElectionClient, observe, LeaderRequest),
        )
        .route(
            "/election/resign",
            unary!(ElectionClient, resign, ResignRequest),
        )
        .merge(auth())
}

/// etcd's Auth paths: witan answers them with whatever its Auth service
/// answers (today: not served).
fn auth() -> Router<Gateway> {
    Router::new()
        .route(
            "/auth/enable",
            unary!(AuthClient, auth_enable, AuthEnableRequest),
        )
        .route(
            "/auth/disable",
            unary!(AuthClient, auth_disable, AuthDisableRequest),
        )
        .route(
            "/auth/status",
            unary!(AuthClient, auth_status, AuthStatusRequest),
        )
        .route(
            "/auth/authenticate",
            unary!(AuthClient, authenticate, AuthenticateRequest),
        )
        .route(
            "/auth/user/add",
            unary!(AuthClient, user_add, AuthUserAddRequest),
        )
        .route(
            "/auth/user/get",
            unary!(AuthClient, user_get, AuthUserGetRequest),
        )
        .route(
            "/auth/user/list",
            unary!(AuthClient, user_list, AuthUserListRequest),
        )
        .route(
            "/auth/user/delete",
            unary!(AuthClient, user_delete, AuthUserDeleteRequest),
        )
        .route(
            "/auth/user/changepw",
            unary!(
                AuthClient,
                user_change_password,
                AuthUserChangePasswordRequest
            ),
        )
        .route(
            "/auth/user/grant",
            unary!(AuthClient, user_grant_role, AuthUserGrantRoleRequest),
        )
        .route(
            "/auth/user/revoke",
            unary!(AuthClient, user_revoke_role, AuthUserRevokeRoleRequest),
        )
        .route(
            "/auth/role/add",
            unary!(AuthClient, role_add, AuthRoleAddRequest),
        )
        .route(
            "/auth/role/get",
            unary!(AuthClient, role_get, AuthRoleGetRequest),
        )
        .route(
            "/auth/role/list",
            unary!(AuthClient, role_list, AuthRoleListRequest),
        )
        .route(
            "/auth/role/delete",
            unary!(AuthClient, role_delete, AuthRoleDeleteRequest),
        )
        .route(
            "/auth/role/grant",
            unary!(
                AuthClient,
                role_grant_permission,
                AuthRoleGrantPermissionRequest
            ),
        )
        .route(
            "/auth/role/revoke",
            unary!(
                AuthClient,
                role_revoke_permission,
                AuthRoleRevokePermissionRequest
            ),
        )
}

/// The gateway's routes with their state.
pub fn router(gateway: Gateway) -> Router {
    let mut router = Router::new();
    for prefix in PREFIXES {
        router = router.nest(prefix, api());
    }
    router
        .route("/health", get(health::health).post(health::health))
        .route("/livez", get(health::livez))
        .route("/readyz", get(health::readyz))
        .route("/version", get(health::version))
        .route("/metrics", get(metrics))
        .with_state(gateway)
}

async fn metrics(State(gw): State<Gateway>) -> Response {
    let text = gw.inner.metrics.render();
    (
        [(
            http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    )
        .into_response()
}

/// What a request no route takes gets: gRPC's Unimplemented for a gRPC
/// call (what tonic answers for an unknown service), 404 otherwise.
pub async fn fallback(request: Request) -> Response {
    let grpc = request
        .headers()
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/grpc"));
    if grpc {
        return tonic::Status::unimplemented("").into_http::<Body>();
    }
    (StatusCode::NOT_FOUND, "Not Found\n").into_response()
}
