//! List the source objects of the `--input` URLs (SPEC §1): a prefix means
//! every object below it, a glob is matched below its literal prefix, and
//! objects are taken in lexicographic order of their full location.

use futures::TryStreamExt;
use globset::GlobBuilder;
use object_store::{ObjectMeta, ObjectStoreExt};

use crate::error::{Error, Result};
use crate::storage::{Location, Stores, is_glob};

/// One object to read.
#[derive(Debug, Clone)]
pub struct Source {
    pub location: Location,
    pub meta: ObjectMeta,
    /// Full printable location, the sort key.
    pub url: String,
}

pub async fn list_sources(stores: &Stores, inputs: &[String]) -> Result<Vec<Source>> {
    let mut sources = Vec::new();
    for input in inputs {
        let found = list_input(stores, input).await?;
        if found.is_empty() {
            tracing::warn!(input = %crate::storage::redact(input), "no objects match this input");
        }
        sources.extend(found);
    }
    sources.sort_by(|a, b| a.url.cmp(&b.url));
    sources.dedup_by(|a, b| a.url == b.url);
    Ok(sources)
}

async fn list_input(stores: &Stores, input: &str) -> Result<Vec<Source>> {
    let (location, text) = stores.resolve(input)?;
    let matcher = if is_glob(&text) {
        let glob = GlobBuilder::new(&text)
            .literal_separator(true)
            .build()
            .map_err(|e| Error::Url { url: input.to_owned(), reason: e.to_string() })?;
        Some(glob.compile_matcher())
    } else {
        None
    };
    let list_error = |source| Error::List { url: location.url(), source };
    let prefix = (!location.path.as_ref().is_empty()).then_some(&location.path);
    let mut metas: Vec<ObjectMeta> = location.store.list(prefix).try_collect().await.map_err(list_error)?;
    if let Some(matcher) = &matcher {
        metas.retain(|m| matcher.is_match(m.location.as_ref()));
    } else if metas.is_empty() && prefix.is_some() {
        // The input may name one object rather than a prefix.
        match location.store.head(&location.path).await {
            Ok(meta) => metas.push(meta),
            Err(object_store::Error::NotFound { .. }) => {}
            Err(e) => return Err(list_error(e)),
        }
    }
    Ok(metas
        .into_iter()
        .map(|meta| Source { url: location.url_of(&meta.location), location: location.clone(), meta })
        .collect())
}
