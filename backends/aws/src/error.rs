//! Turning SDK errors into [`BackendError`]s: throttling and eventual consistency are transient.

use aws_sdk_ec2::error::ProvideErrorMetadata;
use aws_smithy_runtime_api::client::result::SdkError;
use paas_core::BackendError;

/// Error codes worth retrying: throttling, and the eventual consistency of a fresh resource or
/// one still in use by something being deleted.
const TRANSIENT: &[&str] = &[
    "Throttling",
    "ThrottlingException",
    "RequestLimitExceeded",
    "RequestThrottled",
    "PriorRequestNotComplete",
    "ServiceUnavailable",
    "InternalError",
    "InternalFailure",
    "DependencyViolation",
    "IncorrectState",
    "InvalidChangeBatch.Conflict",
    "InvalidIPAddress.InUse",
    // IAM: a role still in a profile or with a policy attached while those are being deleted.
    "DeleteConflict",
    "ConcurrentModification",
    // S3: a conflicting operation on the same bucket is still under way.
    "OperationAborted",
];

/// Whether an error code says the thing is not there.
fn is_not_found(code: &str) -> bool {
    code.ends_with(".NotFound")
        || code.ends_with("NotFound")
        || matches!(
            code,
            "NoSuchHostedZone" | "InvalidKeyPair.NotFound" | "InvalidAllocationID.NotFound" | "NoSuchEntity" | "NoSuchBucket" | "NoSuchKey"
        )
}

/// The error code of an SDK error, when the service answered with one.
pub fn code<E: ProvideErrorMetadata, R>(err: &SdkError<E, R>) -> Option<String> {
    match err {
        SdkError::ServiceError(_) => err.code().map(str::to_string),
        _ => None,
    }
}

/// Maps an SDK error of `op` on `id`.
pub fn aws<E, R>(op: &'static str, id: impl std::fmt::Display, err: SdkError<E, R>) -> BackendError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    let id = id.to_string();
    if injected(&err) {
        return BackendError::Failed {
            op,
            id,
            message: "injected fault".into(),
            source: Some(Box::new(err)),
        };
    }
    match &err {
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            return BackendError::Transient {
                op,
                id,
                message: format!("{}", aws_smithy_types::error::display::DisplayErrorContext(&err)),
            };
        }
        SdkError::ServiceError(_) => {
            let code = err.code().unwrap_or_default().to_string();
            if is_not_found(&code) {
                return BackendError::NotFound { op, id };
            }
            let message = format!("{code}: {}", err.message().unwrap_or_default());
            if TRANSIENT.contains(&code.as_str()) {
                return BackendError::Transient { op, id, message };
            }
            return BackendError::Failed {
                op,
                id,
                message,
                source: Some(Box::new(err)),
            };
        }
        _ => {}
    }
    BackendError::Failed {
        op,
        id,
        message: format!("{}", aws_smithy_types::error::display::DisplayErrorContext(&err)),
        source: Some(Box::new(err)),
    }
}

/// A read of one resource a listing named: `None` when it is gone since (deleted between the
/// two calls, so a listing skips it), the error otherwise.
pub fn unless_gone<T>(read: Result<T, BackendError>) -> Result<Option<T>, BackendError> {
    match read {
        Ok(out) => Ok(Some(out)),
        Err(BackendError::NotFound { .. }) => Ok(None),
        Err(other) => Err(other),
    }
}

/// While creating, a dependency that is "not found" was usually made a moment ago and is not
/// visible yet: retry.
pub fn creating(err: BackendError) -> BackendError {
    match err {
        BackendError::NotFound { op, id } => BackendError::Transient {
            op,
            id,
            message: "a dependency is not visible yet".into(),
        },
        other => other,
    }
}

/// Whether the error is a fault injected by [`crate::client::CallCounter::fail_after`], which
/// must stop the apply rather than be retried.
fn injected(err: &(dyn std::error::Error + 'static)) -> bool {
    let mut next = Some(err);
    while let Some(e) = next {
        if e.downcast_ref::<crate::client::InjectedFault>().is_some() {
            return true;
        }
        next = e.source();
    }
    false
}
