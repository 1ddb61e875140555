pub mod doc;
pub mod i18n;
pub mod page;
