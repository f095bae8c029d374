//! Turning cornucopia's generated crate into a tree of files that a module of the
//! including crate can hold: `mod.rs` with the module skeleton, one file per query
//! file (`queries/<schema>/<table>.rs`), one per schema's types (`types/<schema>.rs`)
//! and one per support module (`client.rs`, ...). Each query function gets its doc
//! comment from its query file ([`QueryDocs`]), each query module one naming its file.

use std::collections::BTreeMap;
use std::path::Path;

use syn::{Attribute, Expr, ExprLit, Item, ItemMod, Lit, Meta};

use super::docs::QueryDocs;

/// The generated code: file paths relative to the generated module's directory
/// (`/`-separated) and their text.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GeneratedCode {
    /// `mod.rs` and every file it includes.
    pub files: BTreeMap<String, String>,
}

/// Reads `<crate>/src/lib.rs`, inlines every `mod x;` from its file, re-roots
/// `crate::` paths at `crate::<module>::`, documents the query functions from `docs`
/// and splits the result into files.
pub(crate) fn split(
    crate_dir: &Path,
    module: &str,
    header: &str,
    docs: &QueryDocs,
) -> Result<GeneratedCode, String> {
    let src = crate_dir.join("src");
    let mut file = parse(&src.join("lib.rs"))?;
    for item in &mut file.items {
        inline(item, &src)?;
    }
    if !cache_statements_in_transactions(&mut file.items) {
        return Err("the generated client has no `impl GenericClient for \
                    DeadpoolTransaction` with a `stmt_cache` function"
            .to_owned());
    }
    let mut code = GeneratedCode::default();
    let mut skeleton = Vec::new();
    for item in file.items {
        match item {
            Item::Mod(m) if m.content.is_some() => {
                let name = m.ident.to_string();
                // Query files are two levels down (schema, table), types one.
                let depth = match name.as_str() {
                    "queries" => 2,
                    "types" => 1,
                    _ => 0,
                };
                skeleton.push(Item::Mod(place(m, &name, depth, docs, &mut code)?));
            }
            other => skeleton.push(other),
        }
    }
    code.files.insert("mod.rs".to_owned(), render(skeleton));
    // Generated paths are absolute from the generated crate's root, which is now a
    // module of the including crate.
    for text in code.files.values_mut() {
        *text = format!(
            "{header}{}",
            text.replace("crate::", &format!("crate::{module}::"))
        );
    }
    Ok(code)
}

/// Moves module `m` (at `path`) into a file of its own when `depth` is 0, else keeps
/// it in the skeleton and places its child modules one level further down.
fn place(
    mut m: ItemMod,
    path: &str,
    depth: usize,
    docs: &QueryDocs,
    code: &mut GeneratedCode,
) -> Result<ItemMod, String> {
    let (brace, mut items) = m.content.take().unwrap_or_default();
    if let Some(query_dir) = path.strip_prefix("queries/") {
        if depth == 0 {
            m.attrs.insert(
                0,
                doc(&format!("The queries of `queries/{query_dir}.sql`.")),
            );
            if let Some(queries) = docs.module(path) {
                let file = format!("{path}.sql");
                for item in &mut items {
                    if let Item::Fn(function) = item
                        && let Some(query) = queries.get(&function.sig.ident.to_string())
                    {
                        let cornucopias = take_docs(&mut function.attrs);
                        let lines =
                            query.lines(&function.sig.ident.to_string(), &file, &cornucopias);
                        function
                            .attrs
                            .splice(0..0, lines.iter().map(|line| doc(line)));
                    }
                }
            }
        } else {
            m.attrs.insert(
                0,
                doc(&format!(
                    "The queries of `queries/{query_dir}/`, a module per file."
                )),
            );
        }
    }
    if depth == 0 {
        let file = format!("{path}.rs");
        let text = render(items);
        let include: Item = syn::parse_str(&format!("include!({file:?});"))
            .map_err(|e| format!("including {file}: {e}"))?;
        code.files.insert(file, text);
        m.content = Some((brace, vec![include]));
        return Ok(m);
    }
    let mut kept = Vec::new();
    for item in items {
        match item {
            Item::Mod(child) if child.content.is_some() => {
                let child_path = format!("{path}/{}", child.ident);
                kept.push(Item::Mod(place(child, &child_path, depth - 1, docs, code)?));
            }
            other => kept.push(other),
        }
    }
    m.content = Some((brace, kept));
    Ok(m)
}

/// Makes the generated queries use the connection's statement cache inside a
/// deadpool transaction, as they do outside one: cornucopia's client prepares the
/// statement again in every transaction (a round trip and a parse per query). The
/// cache is deadpool's, per connection; under transaction pooling groundwork
/// forgets it at each transaction's start and closes its statements before the
/// commit (`pool::transaction`, `pool::commit`). False when the function is not
/// found, so that a change in cornucopia's output is noticed.
fn cache_statements_in_transactions(items: &mut [Item]) -> bool {
    let mut found = false;
    for item in items {
        match item {
            Item::Mod(m) => {
                if let Some((_, children)) = &mut m.content {
                    found |= cache_statements_in_transactions(children);
                }
            }
            Item::Impl(block)
                if matches!(&*block.self_ty, syn::Type::Path(ty)
                    if ty.path.segments.last().is_some_and(|s| s.ident == "DeadpoolTransaction")) =>
            {
                for member in &mut block.items {
                    if let syn::ImplItem::Fn(function) = member
                        && function.sig.ident == "stmt_cache"
                    {
                        function.block = syn::parse_quote!({ true });
                        found = true;
                    }
                }
            }
            _ => {}
        }
    }
    found
}

/// `#[doc = " line"]`, which renders as `/// line`.
fn doc(line: &str) -> Attribute {
    let text = if line.is_empty() {
        String::new()
    } else {
        format!(" {line}")
    };
    syn::parse_quote!(#[doc = #text])
}

/// Removes the doc attributes from `attrs`, returning their lines.
fn take_docs(attrs: &mut Vec<Attribute>) -> Vec<String> {
    let mut lines = Vec::new();
    attrs.retain(|attr| match &attr.meta {
        Meta::NameValue(pair) if pair.path.is_ident("doc") => {
            if let Expr::Lit(ExprLit {
                lit: Lit::Str(text),
                ..
            }) = &pair.value
            {
                let text = text.value();
                lines.push(text.strip_prefix(' ').unwrap_or(&text).to_owned());
            }
            false
        }
        _ => true,
    });
    lines
}

/// Formatted Rust source of `items`.
fn render(items: Vec<Item>) -> String {
    let mut file = syn::parse_file("").unwrap_or_else(|_| unreachable!("an empty file parses"));
    file.items = items;
    prettyplease::unparse(&file)
}

fn parse(path: &Path) -> Result<syn::File, String> {
    let text =
        std::fs::read_to_string(path).map_err(|e| format!("reading {}: {e}", path.display()))?;
    syn::parse_file(&text).map_err(|e| format!("parsing {}: {e}", path.display()))
}

fn inline(item: &mut Item, dir: &Path) -> Result<(), String> {
    let Item::Mod(ItemMod {
        ident,
        content,
        attrs,
        ..
    }) = item
    else {
        return Ok(());
    };
    let name = ident.to_string();
    let child_dir = dir.join(&name);
    match content {
        Some((_, items)) => {
            for child in items {
                inline(child, &child_dir)?;
            }
        }
        None => {
            let file_path = [dir.join(format!("{name}.rs")), child_dir.join("mod.rs")]
                .into_iter()
                .find(|p| p.is_file())
                .ok_or_else(|| format!("module {name} has no file under {}", dir.display()))?;
            let mut file = parse(&file_path)?;
            for child in &mut file.items {
                inline(child, &child_dir)?;
            }
            attrs.extend(file.attrs);
            *content = Some((syn::token::Brace::default(), file.items));
            // An inline module needs no trailing semicolon.
            if let Item::Mod(m) = item {
                m.semi = None;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_in_a_deadpool_transaction_use_the_statement_cache() {
        let mut file = syn::parse_file(
            "mod client { mod deadpool {
                impl GenericClient for DeadpoolClient { fn stmt_cache() -> bool { true } }
                impl GenericClient for DeadpoolTransaction<'_> { fn stmt_cache() -> bool { false } }
            } }",
        )
        .unwrap();
        assert!(cache_statements_in_transactions(&mut file.items));
        let text = prettyplease::unparse(&file);
        assert!(!text.contains("false"), "{text}");
        let mut other = syn::parse_file("impl GenericClient for Client {}").unwrap();
        assert!(!cache_statements_in_transactions(&mut other.items));
    }
}
