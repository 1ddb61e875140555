//! Why a request was turned down: one value per error code of the HTTP
//! contract. Rejections are values, never panics; a write that is rejected
//! acknowledges nothing.

use crate::config::ConfigError;
use crate::coupons::CouponRefusal;
use crate::ids::SeatId;
use crate::passes::PassError;
use crate::queue::QueueRejection;
use crate::seats::SeatRefusal;
use crate::time::Timestamp;
use crate::user_token::UserTokenError;

/// Why a request was turned down. Each maps to one error code of the HTTP contract.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    #[error("no such event")]
    EventNotFound,
    #[error("the event has no waiting room")]
    NoQueue,
    #[error("the waiting room is full")]
    QueueFull,
    #[error("the event is closed: every seat is sold")]
    EventClosed,
    #[error("no such ticket")]
    TicketNotFound,
    #[error("the ticket is not admitted")]
    NotAdmitted,
    #[error("the event has holds or sales and cannot be replaced or deleted")]
    EventInUse,
    #[error("invalid configuration: {0}")]
    InvalidConfig(ConfigError),
    #[error("some seats are not available")]
    SeatsUnavailable { seats: Vec<String> },
    #[error("some seats do not exist")]
    UnknownSeat { seats: Vec<String> },
    #[error("no such seat category")]
    UnknownCategory,
    #[error("no {count} adjacent free seats in one row")]
    NoAdjacent { count: u32 },
    #[error("the user would pass the limit of {limit} seats")]
    LimitExceeded {
        limit: u32,
        current: u32,
        requested: u32,
    },
    #[error("{0}")]
    InvalidRequest(String),
    #[error("no such section")]
    SectionNotFound,
    #[error("no such hold")]
    HoldNotFound,
    #[error("the hold expired or was released")]
    HoldExpired,
    #[error("a hold may not live past {max_expires_at}")]
    TtlTooLong { max_expires_at: Timestamp },
    #[error("the hold is sold: its seats cannot be released and it cannot be extended")]
    HoldSold,
    #[error("no such coupon")]
    CouponNotFound,
    #[error("the user already has the most claims allowed")]
    AlreadyClaimed,
    #[error("the coupon is sold out")]
    SoldOut,
    #[error("the coupon is not open for claims now")]
    NotOpen,
    #[error("no such claim")]
    ClaimNotFound,
    #[error("stock cannot go below the {issued} already issued")]
    StockBelowIssued { issued: u32 },
    #[error("this idempotency key was used with a different request")]
    IdempotencyKeyReused,
    #[error("a pass is required")]
    PassRequired,
    #[error("invalid pass: {0}")]
    PassInvalid(PassInvalid),
    #[error("joining this event as a named user needs a user_token minted by the booking backend")]
    UserTokenRequired,
    #[error("invalid user token: {0}")]
    UserTokenInvalid(UserTokenError),
}

/// Why a pass was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PassInvalid {
    #[error("{0}")]
    Token(PassError),
    #[error("the pass is for another event")]
    OtherEvent,
    #[error("the pass is for another user")]
    OtherUser,
    #[error("the session behind the pass has ended")]
    SessionEnded,
}

impl From<QueueRejection> for Rejection {
    fn from(r: QueueRejection) -> Self {
        match r {
            QueueRejection::Full => Rejection::QueueFull,
            QueueRejection::TicketNotFound => Rejection::TicketNotFound,
            QueueRejection::NotAdmitted => Rejection::NotAdmitted,
        }
    }
}

impl From<CouponRefusal> for Rejection {
    fn from(r: CouponRefusal) -> Self {
        match r {
            CouponRefusal::AlreadyClaimed => Rejection::AlreadyClaimed,
            CouponRefusal::SoldOut => Rejection::SoldOut,
            CouponRefusal::NotOpen => Rejection::NotOpen,
            CouponRefusal::ClaimNotFound => Rejection::ClaimNotFound,
            CouponRefusal::StockBelowIssued { issued } => Rejection::StockBelowIssued { issued },
        }
    }
}

impl From<SeatRefusal> for Rejection {
    fn from(r: SeatRefusal) -> Self {
        let names = |v: Vec<SeatId>| v.iter().map(ToString::to_string).collect();
        match r {
            SeatRefusal::Taken { seats } => Rejection::SeatsUnavailable {
                seats: names(seats),
            },
            SeatRefusal::UnknownSeat { seats } => Rejection::UnknownSeat {
                seats: names(seats),
            },
            SeatRefusal::LimitExceeded {
                limit,
                current,
                requested,
            } => Rejection::LimitExceeded {
                limit,
                current,
                requested,
            },
            SeatRefusal::NoAdjacent { count } => Rejection::NoAdjacent { count },
            SeatRefusal::UnknownCategory => Rejection::UnknownCategory,
            SeatRefusal::InvalidRequest => {
                Rejection::InvalidRequest("seats must name at least one seat, each once".into())
            }
            SeatRefusal::NotFound => Rejection::HoldNotFound,
            SeatRefusal::Expired | SeatRefusal::NotHeld => Rejection::HoldExpired,
            SeatRefusal::TooLong { max_expires_at } => Rejection::TtlTooLong { max_expires_at },
            SeatRefusal::Sold => Rejection::HoldSold,
        }
    }
}
