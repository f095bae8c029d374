//! groundwork
#[doc(hidden)]
pub mod generated {
    include!("generated/cornucopia.rs");
}
pub use generated::{client, queries, types};
