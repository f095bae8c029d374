//! Turning cornucopia's generated crate into one file that can live in a module.

use std::path::Path;

use syn::{Item, ItemMod};

/// Reads `<crate>/src/lib.rs`, inlines every `mod x;` from its file, re-roots
/// `crate::` paths at `crate::<module>::` and returns the formatted file.
pub(crate) fn flatten(crate_dir: &Path, module: &str) -> Result<String, String> {
    let src = crate_dir.join("src");
    let mut file = parse(&src.join("lib.rs"))?;
    for item in &mut file.items {
        inline(item, &src)?;
    }
    let text = prettyplease::unparse(&file);
    // Generated paths are absolute from the generated crate's root, which is now a
    // module of the including crate.
    Ok(text.replace("crate::", &format!("crate::{module}::")))
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
