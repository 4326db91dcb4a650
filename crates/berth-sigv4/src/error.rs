//! Verification failures, worded as AWS words them.
//!
//! Nothing in here ever carries a secret access key or a full request
//! signature: messages are built from already-sanitised, truncated echoes.

/// Why a request failed SigV4 authentication.
///
/// `Display` (and so [`berth_wire::ServiceError::message`]) is the
/// client-facing message; [`berth_wire::ServiceError::code`] is the AWS
/// JSON-protocol exception name and [`SigV4Error::query_code`] the
/// query-protocol (IAM/STS/ELBv2 XML) error code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SigV4Error {
    /// No `Authorization` header and no presigned query parameters.
    #[error("Missing Authentication Token")]
    MissingAuthenticationToken,

    /// The signature information is malformed or incomplete (missing
    /// `Credential`/`SignedHeaders`/`Signature`, missing or malformed date,
    /// badly shaped credential scope, unsupported algorithm, ...). The
    /// payload is the full AWS-style message.
    #[error("{0}")]
    IncompleteSignature(String),

    /// The access key id is unknown.
    #[error("The security token included in the request is invalid.")]
    UnrecognizedClient,

    /// The recomputed signature differs from the one provided.
    #[error(
        "The request signature we calculated does not match the signature you provided. \
         Check your AWS Secret Access Key and signing method. Consult the service documentation for details."
    )]
    SignatureDoesNotMatch,

    /// Another signature-level inconsistency (credential-scope date differs
    /// from the request date, `x-amz-content-sha256` does not match the body,
    /// ...). The payload is the full message.
    #[error("{0}")]
    InvalidSignature(String),

    /// The signing time is more than 15 minutes before `now`.
    #[error("Signature expired: {signed_at} is now earlier than {earliest} ({now} - 15 min.)")]
    SignatureExpired {
        /// The request's signing time, ISO-8601 basic.
        signed_at: String,
        /// `now - 15 min`.
        earliest: String,
        /// The server's `now`.
        now: String,
    },

    /// The signing time is more than 15 minutes after `now`.
    #[error(
        "Signature not yet current: {signed_at} is still later than {latest} ({now} + 15 min.)"
    )]
    SignatureNotYetCurrent {
        /// The request's signing time, ISO-8601 basic.
        signed_at: String,
        /// `now + 15 min`.
        latest: String,
        /// The server's `now`.
        now: String,
    },

    /// A presigned request used after `X-Amz-Date + X-Amz-Expires`.
    #[error(
        "Request has expired: it was valid until {expired_at} ({signed_at} + {expires} sec.), it is now {now}."
    )]
    RequestExpired {
        /// `X-Amz-Date`.
        signed_at: String,
        /// `X-Amz-Expires`, seconds.
        expires: u64,
        /// `X-Amz-Date + X-Amz-Expires`.
        expired_at: String,
        /// The server's `now`.
        now: String,
    },
}

impl SigV4Error {
    /// The AWS JSON-protocol exception name (`__type`), same as
    /// [`berth_wire::ServiceError::code`].
    pub fn json_code(&self) -> &'static str {
        match self {
            Self::MissingAuthenticationToken => "MissingAuthenticationTokenException",
            Self::IncompleteSignature(_) => "IncompleteSignatureException",
            Self::UnrecognizedClient => "UnrecognizedClientException",
            Self::SignatureDoesNotMatch
            | Self::InvalidSignature(_)
            | Self::SignatureExpired { .. }
            | Self::SignatureNotYetCurrent { .. }
            | Self::RequestExpired { .. } => "InvalidSignatureException",
        }
    }

    /// The query-protocol (IAM/STS/ELBv2 XML `<Code>`) name for the same failure.
    ///
    /// STS and IAM report every time-window failure, presigned expiry
    /// included, as `SignatureDoesNotMatch`; `RequestExpired` is an EC2-only
    /// code and is not used here.
    pub fn query_code(&self) -> &'static str {
        match self {
            Self::MissingAuthenticationToken => "MissingAuthenticationToken",
            Self::IncompleteSignature(_) => "IncompleteSignature",
            Self::UnrecognizedClient => "InvalidClientTokenId",
            Self::SignatureDoesNotMatch
            | Self::InvalidSignature(_)
            | Self::SignatureExpired { .. }
            | Self::SignatureNotYetCurrent { .. }
            | Self::RequestExpired { .. } => "SignatureDoesNotMatch",
        }
    }

    /// HTTP status for the query protocol: STS/IAM answer authentication
    /// failures with 403, malformed signatures with 400.
    pub fn query_status(&self) -> u16 {
        match self {
            Self::IncompleteSignature(_) => 400,
            _ => 403,
        }
    }

    /// True for the clock-related failures (skew or presigned expiry), which
    /// some SDKs use to trigger clock-skew correction.
    pub fn is_time_window(&self) -> bool {
        matches!(
            self,
            Self::SignatureExpired { .. }
                | Self::SignatureNotYetCurrent { .. }
                | Self::RequestExpired { .. }
        )
    }
}

impl berth_wire::ServiceError for SigV4Error {
    fn code(&self) -> &'static str {
        self.json_code()
    }

    /// JSON-protocol status: AWS answers a missing token with 403 and the
    /// other signature failures with 400.
    fn status(&self) -> u16 {
        match self {
            Self::MissingAuthenticationToken => 403,
            _ => 400,
        }
    }
}
