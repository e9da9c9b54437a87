//! The IAM actions behind every AWS call Portcullis makes, and who makes it: the Lambda
//! function (granted by `deploy/template.yaml`) or an operator running the `portcullis`
//! command line (listed in `deploy/README.md`). A test checks this table against the
//! source and the template, so a new call cannot ship without its permission.

/// Who makes a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Caller {
    /// The Lambda function, on sign-ins.
    Function,
    /// An operator, through `portcullis publish|rollback|promote|abort|status|diff|data|activity`.
    Operator,
}

/// One SDK call.
#[derive(Debug, Clone, Copy)]
pub struct Call {
    /// The SDK method (`get_object`).
    pub sdk: &'static str,
    /// The IAM action it needs.
    pub action: &'static str,
    /// Who calls it.
    pub caller: Caller,
}

const fn call(sdk: &'static str, action: &'static str, caller: Caller) -> Call {
    Call {
        sdk,
        action,
        caller,
    }
}

/// Every AWS call in this crate.
pub const CALLS: &[Call] = &[
    // Manifests (conditional GET), modules, precompiled artifacts.
    call("get_object", "s3:GetObject", Caller::Function),
    // Write-back of precompiled artifacts and captures (function), publishing (operator).
    call("put_object", "s3:PutObject", Caller::Function),
    call("list_objects_v2", "s3:ListBucket", Caller::Operator),
    // Ending a canary (promote, abort, rollback).
    call("delete_object", "s3:DeleteObject", Caller::Operator),
    // The artifact key, once per cold start.
    call(
        "get_secret_value",
        "secretsmanager:GetSecretValue",
        Caller::Function,
    ),
    // Rule data and counters (reads), activity and counters (writes).
    call("batch_get_item", "dynamodb:BatchGetItem", Caller::Function),
    call("update_item", "dynamodb:UpdateItem", Caller::Function),
    call(
        "batch_write_item",
        "dynamodb:BatchWriteItem",
        Caller::Function,
    ),
    // A counter's new window and reset (function, on the counter table only); writing
    // and deleting rule data (operator).
    call("put_item", "dynamodb:PutItem", Caller::Function),
    call("get_item", "dynamodb:GetItem", Caller::Operator),
    call("delete_item", "dynamodb:DeleteItem", Caller::Function),
    call("query", "dynamodb:Query", Caller::Operator),
];

/// Actions the function needs without calling them: without `s3:ListBucket`, S3 answers
/// a read of a missing key (a tenant with no manifest) with 403 instead of 404.
/// And with SSE-KMS, S3 asks KMS for a data key on the function's behalf when it writes a
/// capture (`kms:GenerateDataKey` on the capture key).
pub const FUNCTION_EXTRA: &[&str] = &["s3:ListBucket", "kms:GenerateDataKey"];

/// The actions the function is granted: exactly its calls plus [`FUNCTION_EXTRA`].
pub fn function_actions() -> Vec<&'static str> {
    let mut actions: Vec<&str> = CALLS
        .iter()
        .filter(|c| c.caller == Caller::Function)
        .map(|c| c.action)
        .chain(FUNCTION_EXTRA.iter().copied())
        .collect();
    actions.sort_unstable();
    actions.dedup();
    actions
}
