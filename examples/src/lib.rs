//! What the example programs share: how they find the cluster.

/// The endpoints flag every example takes (comma-separated client URLs;
/// `WITAN_ENDPOINTS` in the environment), defaulting to the one member
/// the README's first command starts.
#[derive(Debug, Clone, clap::Args)]
pub struct Endpoints {
    /// Client URLs of the cluster's members, comma-separated.
    #[arg(
        long,
        env = "WITAN_ENDPOINTS",
        value_delimiter = ',',
        default_value = "http://127.0.0.1:2379"
    )]
    pub endpoints: Vec<String>,
}

impl Endpoints {
    /// Connects a client to these endpoints with default options.
    pub async fn connect(&self) -> Result<witan_client::Client, witan_client::Error> {
        witan_client::Client::connect(&self.endpoints, witan_client::ClientOptions::default()).await
    }
}
