//! Secrets for rules' lookups in AWS Secrets Manager ([`ManagedSecrets`]): the secret
//! `NAME` of owner `acme` is `<prefix>acme/NAME` (the prefix defaults to `portcullis/`),
//! so one tenant's name can never resolve another tenant's secret (names are `A-Z a-z
//! 0-9 - _` only, checked when the manifest is validated; the owner is the rule's tenant,
//! or `_global` for global rules).

use std::time::Duration;

use aws_sdk_secretsmanager::Client;
use portcullis_gate::backend::BackendError;
use portcullis_gate::data::lookups::SecretSource;
use portcullis_gate::store::{BoxFuture, TenantId};

/// The default name prefix.
pub const DEFAULT_PREFIX: &str = "portcullis/";

/// Secrets in Secrets Manager under a prefix.
#[derive(Debug, Clone)]
pub struct ManagedSecrets {
    client: Client,
    prefix: String,
}

impl ManagedSecrets {
    /// Secrets named `<prefix><owner>/<name>`.
    pub fn new(client: Client, prefix: &str) -> Self {
        ManagedSecrets {
            client,
            prefix: prefix.to_owned(),
        }
    }

    /// Secrets through a client for `config`.
    pub fn from_config(config: &aws_config::SdkConfig, prefix: &str) -> Self {
        Self::new(Client::new(config), prefix)
    }

    /// The secret id of `name` for `owner`.
    pub fn id(&self, owner: &TenantId, name: &str) -> String {
        format!("{}{owner}/{name}", self.prefix)
    }
}

impl SecretSource for ManagedSecrets {
    fn secret<'a>(
        &'a self,
        owner: &'a TenantId,
        name: &'a str,
        timeout: Duration,
    ) -> BoxFuture<'a, Result<String, BackendError>> {
        Box::pin(async move {
            let call = self
                .client
                .get_secret_value()
                .secret_id(self.id(owner, name))
                .send();
            let output = tokio::time::timeout(timeout, call)
                .await
                .map_err(|_| BackendError::Timeout {
                    operation: "secretsmanager GetSecretValue",
                    after: timeout,
                })?
                .map_err(|e| BackendError::Call {
                    operation: "secretsmanager GetSecretValue",
                    source: Box::new(e),
                })?;
            output
                .secret_string()
                .map(str::to_owned)
                .ok_or(BackendError::Malformed {
                    operation: "secretsmanager GetSecretValue",
                    what: "the secret has no string value".to_owned(),
                })
        })
    }
}
