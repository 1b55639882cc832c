//! Walking the document's operations, and where its component schemas live.

use utoipa::openapi::PathItem;
use utoipa::openapi::path::Operation;

/// The prefix of a reference to a component schema.
pub(super) const SCHEMA_PREFIX: &str = "#/components/schemas/";

/// Each operation of a path item with its HTTP method.
pub(super) fn operations_with_method_mut(
    item: &mut PathItem,
) -> impl Iterator<Item = (&'static str, &mut Operation)> {
    [
        ("get", item.get.as_mut()),
        ("post", item.post.as_mut()),
        ("put", item.put.as_mut()),
        ("delete", item.delete.as_mut()),
    ]
    .into_iter()
    .filter_map(|(method, operation)| operation.map(|operation| (method, operation)))
}

/// Each operation of a path item.
pub(super) fn operations_mut(item: &mut PathItem) -> impl Iterator<Item = &mut Operation> {
    [
        item.get.as_mut(),
        item.post.as_mut(),
        item.put.as_mut(),
        item.delete.as_mut(),
    ]
    .into_iter()
    .flatten()
}
