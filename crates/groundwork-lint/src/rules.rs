//! The static rules: each statement of each migration, parsed by PostgreSQL's own
//! parser (libpg_query), against what the earlier migrations and the earlier
//! statements of the same file made.
//!
//! A table created earlier in the same file is new: nobody reads or writes it yet, so
//! the lock and scan rules stay quiet about it. Every other table is an existing one,
//! populated and in use.

use std::collections::HashSet;

use pg_query::protobuf::{
    AlterTableCmd, AlterTableType, ColumnDef, ConstrType, Constraint, DropBehavior, NullTestType,
    ObjectType, RangeVar, TypeName,
};
use pg_query::{NodeEnum, NodeRef};

use super::annotation::{ALLOW_MARKER, allows};
use super::finding::{Finding, Location, Origin, Severity, line_of};
use groundwork_migrate::{Migration, split_statements};

/// A rule: its name, what it corresponds to elsewhere and how bad it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rule {
    /// The name findings and `allow` comments use.
    pub name: &'static str,
    /// The squawk rule or strong_migrations check it corresponds to, if any.
    pub counterpart: &'static str,
    /// Its severity.
    pub severity: Severity,
    /// Static or trace.
    pub origin: Origin,
}

const fn rule(name: &'static str, counterpart: &'static str, severity: Severity) -> Rule {
    Rule {
        name,
        counterpart,
        severity,
        origin: Origin::Static,
    }
}

const fn traced(name: &'static str, counterpart: &'static str, severity: Severity) -> Rule {
    Rule {
        name,
        counterpart,
        severity,
        origin: Origin::Trace,
    }
}

use Severity::{Error, Warning};

/// Every rule, static and traced.
pub const RULES: &[Rule] = &[
    rule(
        "adding-field-with-default",
        "squawk adding-field-with-default; strong_migrations add_column_default_callable",
        Error,
    ),
    rule(
        "adding-foreign-key-constraint",
        "squawk adding-foreign-key-constraint; strong_migrations add_foreign_key",
        Error,
    ),
    rule(
        "adding-not-nullable-field",
        "squawk adding-not-nullable-field; strong_migrations change_column_null",
        Error,
    ),
    rule(
        "adding-required-field",
        "squawk adding-required-field",
        Error,
    ),
    rule(
        "adding-serial-primary-key-field",
        "squawk adding-serial-primary-key-field; strong_migrations add_auto_incrementing",
        Error,
    ),
    rule(
        "adding-exclusion-constraint",
        "strong_migrations add_exclusion_constraint",
        Error,
    ),
    rule(
        "ban-alter-domain-with-add-constraint",
        "squawk ban-alter-domain-with-add-constraint",
        Error,
    ),
    rule("ban-char-field", "squawk ban-char-field", Warning),
    rule(
        "ban-concurrent-index-creation-in-transaction",
        "squawk ban-concurrent-index-creation-in-transaction",
        Error,
    ),
    rule(
        "ban-drop-column",
        "squawk ban-drop-column; strong_migrations remove_column",
        Warning,
    ),
    rule("ban-drop-database", "squawk ban-drop-database", Error),
    rule("ban-drop-not-null", "squawk ban-drop-not-null", Warning),
    rule("ban-drop-table", "squawk ban-drop-table", Warning),
    rule(
        "ban-table-rewrite",
        "squawk changing-column-type (other rewrites); strong_migrations change_column",
        Error,
    ),
    rule("ban-truncate-cascade", "squawk ban-truncate-cascade", Error),
    rule(
        "changing-column-type",
        "squawk changing-column-type; strong_migrations change_column",
        Error,
    ),
    rule(
        "constraint-missing-not-valid",
        "squawk constraint-missing-not-valid / adding-check-constraint; strong_migrations add_check_constraint, validate_check_constraint",
        Error,
    ),
    rule(
        "disallowed-unique-constraint",
        "squawk disallowed-unique-constraint; strong_migrations add_unique_constraint",
        Error,
    ),
    rule(
        "prefer-bigint-over-int",
        "squawk prefer-bigint-over-int",
        Warning,
    ),
    rule(
        "prefer-bigint-over-smallint",
        "squawk prefer-bigint-over-smallint",
        Warning,
    ),
    rule("prefer-identity", "squawk prefer-identity", Warning),
    rule("prefer-robust-stmts", "squawk prefer-robust-stmts", Warning),
    rule("prefer-text-field", "squawk prefer-text-field", Warning),
    rule("prefer-timestamptz", "squawk prefer-timestamptz", Warning),
    rule(
        "renaming-column",
        "squawk renaming-column; strong_migrations rename_column",
        Warning,
    ),
    rule(
        "renaming-table",
        "squawk renaming-table; strong_migrations rename_table",
        Warning,
    ),
    rule(
        "require-concurrent-index-creation",
        "squawk require-concurrent-index-creation; strong_migrations add_index",
        Error,
    ),
    rule(
        "require-concurrent-index-deletion",
        "squawk require-concurrent-index-deletion; strong_migrations remove_index",
        Warning,
    ),
    rule(
        "require-concurrent-reindex",
        "strong_migrations (REINDEX without CONCURRENTLY)",
        Error,
    ),
    rule("transaction-nesting", "squawk transaction-nesting", Error),
    rule("lint-annotation", "groundwork", Error),
    rule("parse-error", "groundwork", Error),
    traced("statement-failed", "groundwork trace", Error),
    traced("table-rewrite", "groundwork trace", Error),
    traced("lock-held-while-scanning", "groundwork trace", Error),
    traced("down-restores-catalog", "groundwork trace", Error),
    traced(
        "rolling-deploy-compat",
        "groundwork trace (strong_migrations: rename and remove checks)",
        Error,
    ),
    planned("plan-seq-scan"),
    planned("plan-large-sort"),
    planned("plan-cost"),
];

const fn planned(name: &'static str) -> Rule {
    Rule {
        name,
        counterpart: "groundwork check plans",
        severity: Error,
        origin: Origin::Plan,
    }
}

/// The rule called `name`.
pub fn rule_named(name: &str) -> Option<&'static Rule> {
    RULES.iter().find(|r| r.name == name)
}

/// A relation as a statement names it: schema (if given) and name.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct Rel {
    schema: Option<String>,
    name: String,
}

impl Rel {
    fn from_range(range: &RangeVar) -> Self {
        Self {
            schema: (!range.schemaname.is_empty()).then(|| range.schemaname.clone()),
            name: range.relname.clone(),
        }
    }

    fn from_names(names: &[String]) -> Option<Self> {
        let (name, rest) = names.split_last()?;
        Some(Self {
            schema: rest.last().cloned(),
            name: name.clone(),
        })
    }

    /// The same relation, allowing for one side leaving the schema out.
    fn matches(&self, other: &Self) -> bool {
        self.name == other.name
            && (self.schema.is_none() || other.schema.is_none() || self.schema == other.schema)
    }
}

impl std::fmt::Display for Rel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.schema {
            Some(schema) => write!(f, "{schema}.{}", self.name),
            None => f.write_str(&self.name),
        }
    }
}

/// What the statements so far have made.
#[derive(Default)]
struct Known {
    /// `(table, column)` with a validated `CHECK (column IS NOT NULL)`: `SET NOT NULL`
    /// uses it instead of scanning.
    not_null_checked: Vec<(Rel, String)>,
    /// Constraints added `NOT VALID`, with the column a `col IS NOT NULL` check is
    /// about.
    not_valid: Vec<(Rel, String, Option<String>)>,
    /// Column types as created: `(table, column)` and the type.
    columns: Vec<(Rel, String, ColumnType)>,
}

/// A column's type as a statement wrote it: name without `pg_catalog.` and modifiers.
#[derive(Clone, Debug, PartialEq, Eq)]
struct ColumnType {
    name: String,
    modifiers: Vec<i64>,
}

impl ColumnType {
    fn of(t: &TypeName) -> Self {
        Self {
            name: type_name(t),
            modifiers: t
                .typmods
                .iter()
                .filter_map(|m| match &m.node {
                    Some(NodeEnum::AConst(c)) => match &c.val {
                        Some(pg_query::protobuf::a_const::Val::Ival(i)) => Some(i64::from(i.ival)),
                        _ => None,
                    },
                    _ => None,
                })
                .collect(),
        }
    }

    /// Whether changing a column from `self` to `to` keeps its data as stored: no
    /// rewrite, no scan (varchar(n) to a longer or unbounded varchar or text, text to
    /// unbounded varchar, numeric(p, s) to a larger p with the same s or to numeric).
    fn binary_compatible_to(&self, to: &Self) -> bool {
        let text_like = |t: &Self| t.name == "text" || t.name == "varchar";
        if text_like(self) && text_like(to) {
            return to.modifiers.is_empty()
                || (self.name == "varchar"
                    && !self.modifiers.is_empty()
                    && to.name == "varchar"
                    && to.modifiers >= self.modifiers);
        }
        if self.name == "numeric" && to.name == "numeric" {
            return to.modifiers.is_empty()
                || (self.modifiers.len() == 2
                    && to.modifiers.len() == 2
                    && to.modifiers[0] >= self.modifiers[0]
                    && to.modifiers[1] == self.modifiers[1]);
        }
        self == to
    }
}

/// What the current file has made so far.
#[derive(Default)]
struct FileState {
    tables: Vec<Rel>,
    indexes: HashSet<String>,
    /// Constraints added `NOT VALID` in this file.
    not_valid: Vec<(Rel, String)>,
}

impl FileState {
    fn is_new(&self, rel: &Rel) -> bool {
        self.tables.iter().any(|t| t.matches(rel))
    }
}

/// Lints every migration's up file, oldest first.
pub fn lint_static(migrations: &[Migration]) -> Vec<Finding> {
    let mut known = Known::default();
    let mut findings = Vec::new();
    for migration in migrations {
        let script = &migration.up;
        let transactional = !script.no_transaction();
        let mut file = FileState::default();
        let mut previous_end = 0;
        for statement in split_statements(&script.sql) {
            let location = Location {
                file: script.path.clone(),
                line: line_of(&script.sql, statement.offset),
            };
            let before = &script.sql[previous_end..statement.offset];
            previous_end = statement.offset + statement.sql.len();
            let mut found = Vec::new();
            let mut check = Check {
                location: &location,
                transactional,
                file: &mut file,
                known: &mut known,
                found: &mut found,
            };
            match pg_query::parse(statement.sql, pg_query::ParserOptions::DEFAULT) {
                Ok(parsed) => {
                    for raw in &parsed.protobuf.stmts {
                        if let Some(node) = raw.stmt.as_ref().and_then(|s| s.node.as_ref()) {
                            check.statement(node);
                        }
                    }
                }
                Err(error) => check.report(
                    "parse-error",
                    format!("PostgreSQL's parser rejects the statement: {error}"),
                    "fix the syntax; the statement would fail when the migration runs",
                ),
            }
            let notes = allows(&format!("{before}\n{}", statement.sql));
            for note in &notes {
                if note.reason.is_empty() {
                    found.push(location.finding(
                        Error,
                        "lint-annotation",
                        format!("`{ALLOW_MARKER}` without a reason"),
                        format!("write `-- {ALLOW_MARKER} RULE because WHY`"),
                        Origin::Static,
                    ));
                }
                for name in &note.rules {
                    if rule_named(name).is_none() {
                        found.push(location.finding(
                            Error,
                            "lint-annotation",
                            format!("`{ALLOW_MARKER}` names an unknown rule {name:?}"),
                            "use a rule name from docs/MIGRATIONS.md",
                            Origin::Static,
                        ));
                    }
                }
            }
            findings.extend(
                found
                    .into_iter()
                    .filter(|f| !notes.iter().any(|n| n.covers(f.rule))),
            );
        }
    }
    findings
}

/// The `allow` comments that apply to a statement of `sql` starting at `offset`,
/// for the trace's findings: the comments since the previous statement, and the
/// statement's own.
pub(crate) fn allowed_at(sql: &str, offset: usize, rule: &str) -> bool {
    let statements = split_statements(sql);
    let mut previous_end = 0;
    for statement in statements {
        if statement.offset == offset {
            let text = &sql[previous_end..statement.offset + statement.sql.len()];
            return allows(text).iter().any(|a| a.covers(rule));
        }
        previous_end = statement.offset + statement.sql.len();
    }
    false
}

struct Check<'a> {
    location: &'a Location,
    transactional: bool,
    file: &'a mut FileState,
    known: &'a mut Known,
    found: &'a mut Vec<Finding>,
}

impl Check<'_> {
    fn report(&mut self, rule: &'static str, message: impl Into<String>, hint: impl Into<String>) {
        let severity = rule_named(rule).map_or(Error, |r| r.severity);
        self.found.push(
            self.location
                .finding(severity, rule, message, hint, Origin::Static),
        );
    }

    fn statement(&mut self, node: &NodeEnum) {
        match node {
            NodeEnum::CreateStmt(create) => {
                let Some(range) = &create.relation else {
                    return;
                };
                let rel = Rel::from_range(range);
                let keys = key_columns(&create.table_elts, &create.constraints);
                for element in &create.table_elts {
                    if let Some(NodeEnum::ColumnDef(column)) = &element.node {
                        self.column_types(&rel, column, &keys);
                        for c in constraints(column) {
                            self.remember_not_null_check(&rel, c, true);
                        }
                    }
                }
                self.file.tables.push(rel);
            }
            NodeEnum::CreateTableAsStmt(create) => {
                if let Some(range) = create.into.as_ref().and_then(|i| i.rel.as_ref()) {
                    self.file.tables.push(Rel::from_range(range));
                }
            }
            NodeEnum::IndexStmt(index) => self.index(index),
            NodeEnum::DropStmt(drop) => self.drop(drop),
            NodeEnum::AlterTableStmt(alter) => {
                let Some(range) = &alter.relation else {
                    return;
                };
                if alter.objtype() != ObjectType::ObjectTable {
                    return;
                }
                let rel = Rel::from_range(range);
                let new = self.file.is_new(&rel);
                for cmd in &alter.cmds {
                    if let Some(NodeEnum::AlterTableCmd(cmd)) = &cmd.node {
                        self.alter(&rel, new, cmd);
                    }
                }
            }
            NodeEnum::RenameStmt(rename) => {
                let Some(range) = &rename.relation else {
                    return;
                };
                let rel = Rel::from_range(range);
                if self.file.is_new(&rel) {
                    if rename.rename_type() == ObjectType::ObjectTable {
                        self.file.tables.push(Rel {
                            schema: rel.schema.clone(),
                            name: rename.newname.clone(),
                        });
                    }
                    return;
                }
                match rename.rename_type() {
                    ObjectType::ObjectColumn => self.report(
                        "renaming-column",
                        format!(
                            "renaming column {}.{} to {} breaks the code still running against it",
                            rel, rename.subname, rename.newname
                        ),
                        "add the new column, write both, backfill, switch reads, then drop \
                         the old one in a later release (or keep a view with the old name)",
                    ),
                    ObjectType::ObjectTable => self.report(
                        "renaming-table",
                        format!(
                            "renaming table {rel} to {} breaks the code still running against it",
                            rename.newname
                        ),
                        "create the new table (or a view with the new name), move readers and \
                         writers over, then drop the old one in a later release",
                    ),
                    _ => {}
                }
            }
            NodeEnum::TransactionStmt(_) => self.report(
                "transaction-nesting",
                "the migration controls its own transaction",
                "remove BEGIN/COMMIT/ROLLBACK: the runner wraps each file in a transaction; \
                 for statements that cannot run in one, start the file with \
                 `-- groundwork:no-transaction`",
            ),
            NodeEnum::DropdbStmt(drop) => self.report(
                "ban-drop-database",
                format!("dropping database {}", drop.dbname),
                "never drop a database from a migration",
            ),
            NodeEnum::TruncateStmt(truncate)
                if truncate.behavior() == DropBehavior::DropCascade =>
            {
                self.report(
                    "ban-truncate-cascade",
                    "TRUNCATE ... CASCADE also empties every table that references these, \
                     recursively",
                    "truncate the tables you mean by name, without CASCADE",
                );
            }
            NodeEnum::AlterDomainStmt(alter) => {
                let constraint = alter.def.as_ref().and_then(|d| match &d.node {
                    Some(NodeEnum::Constraint(c)) => Some(c),
                    _ => None,
                });
                if alter.subtype == "C" && constraint.is_some_and(|c| !c.skip_validation) {
                    self.report(
                        "ban-alter-domain-with-add-constraint",
                        "ALTER DOMAIN ... ADD CONSTRAINT checks every column of the domain \
                         in every table, while holding locks on them",
                        "add the constraint NOT VALID, then VALIDATE CONSTRAINT in a later \
                         migration",
                    );
                }
            }
            NodeEnum::ReindexStmt(reindex) if !has_option(&reindex.params, "concurrently") => {
                self.report(
                    "require-concurrent-reindex",
                    "REINDEX without CONCURRENTLY blocks writes (and reads through the index) \
                     until it finishes",
                    "REINDEX ... CONCURRENTLY in a `-- groundwork:no-transaction` file",
                );
            }
            NodeEnum::VacuumStmt(vacuum) if has_option(&vacuum.options, "full") => {
                self.report(
                    "ban-table-rewrite",
                    "VACUUM FULL rewrites the table under ACCESS EXCLUSIVE",
                    "leave bloat to autovacuum, or use pg_repack outside migrations",
                );
            }
            NodeEnum::ClusterStmt(_) => self.report(
                "ban-table-rewrite",
                "CLUSTER rewrites the table under ACCESS EXCLUSIVE",
                "do not CLUSTER from a migration; use pg_repack outside migrations",
            ),
            _ => {}
        }
    }

    fn index(&mut self, index: &pg_query::protobuf::IndexStmt) {
        let Some(range) = &index.relation else {
            return;
        };
        let rel = Rel::from_range(range);
        let name = if index.idxname.is_empty() {
            "an index".to_owned()
        } else {
            format!("index {}", index.idxname)
        };
        if index.concurrent {
            if self.transactional {
                self.report(
                    "ban-concurrent-index-creation-in-transaction",
                    format!("CREATE INDEX CONCURRENTLY ({name}) cannot run inside a transaction"),
                    "put it in a file of its own whose first line is \
                     `-- groundwork:no-transaction`",
                );
            } else if !index.if_not_exists {
                self.report(
                    "prefer-robust-stmts",
                    format!(
                        "{name} without IF NOT EXISTS: if the file fails later, running it \
                         again fails here"
                    ),
                    "CREATE INDEX CONCURRENTLY IF NOT EXISTS ...; the runner drops an INVALID \
                     index a failed build left before it runs the file again",
                );
            }
        } else if !self.file.is_new(&rel) {
            self.report(
                "require-concurrent-index-creation",
                format!("creating {name} on {rel} blocks its writes until the build finishes"),
                "CREATE INDEX CONCURRENTLY IF NOT EXISTS ... in a file whose first line is \
                 `-- groundwork:no-transaction`",
            );
        }
        if !index.idxname.is_empty() {
            self.file.indexes.insert(index.idxname.clone());
        }
    }

    fn drop(&mut self, drop: &pg_query::protobuf::DropStmt) {
        for object in &drop.objects {
            let names: Vec<String> = match &object.node {
                Some(NodeEnum::List(list)) => strings(&list.items),
                _ => continue,
            };
            let Some(rel) = Rel::from_names(&names) else {
                continue;
            };
            match drop.remove_type() {
                ObjectType::ObjectTable if !self.file.is_new(&rel) => self.report(
                    "ban-drop-table",
                    format!("dropping table {rel} loses its rows and breaks code still using it"),
                    "stop using the table in a release first; drop it in a later migration, \
                     and say why with `-- groundwork:lint allow ban-drop-table because ...`",
                ),
                ObjectType::ObjectIndex => {
                    if drop.concurrent {
                        if self.transactional {
                            self.report(
                                "ban-concurrent-index-creation-in-transaction",
                                format!(
                                    "DROP INDEX CONCURRENTLY {rel} cannot run inside a transaction"
                                ),
                                "put it in a file of its own whose first line is \
                                 `-- groundwork:no-transaction`",
                            );
                        } else if !drop.missing_ok {
                            self.report(
                                "prefer-robust-stmts",
                                format!(
                                    "DROP INDEX CONCURRENTLY {rel} without IF EXISTS fails when \
                                     the file runs again"
                                ),
                                "DROP INDEX CONCURRENTLY IF EXISTS ...",
                            );
                        }
                    } else if !self.file.indexes.contains(&rel.name) {
                        self.report(
                            "require-concurrent-index-deletion",
                            format!(
                                "DROP INDEX {rel} takes ACCESS EXCLUSIVE on its table, queued \
                                 behind every running query"
                            ),
                            "DROP INDEX CONCURRENTLY IF EXISTS ... in a file whose first line \
                             is `-- groundwork:no-transaction`",
                        );
                    }
                }
                _ => {}
            }
        }
    }

    fn alter(&mut self, rel: &Rel, new: bool, cmd: &AlterTableCmd) {
        let def = cmd.def.as_ref().and_then(|d| d.node.as_ref());
        match cmd.subtype() {
            AlterTableType::AtAddColumn => {
                let Some(NodeEnum::ColumnDef(column)) = def else {
                    return;
                };
                self.column_types(rel, column, &HashSet::new());
                for c in constraints(column) {
                    self.remember_not_null_check(rel, c, true);
                }
                if !new {
                    self.add_column(rel, column);
                }
            }
            AlterTableType::AtAlterColumnType if !new => {
                let Some(target) = (match def {
                    Some(NodeEnum::ColumnDef(column)) => column.type_name.as_ref(),
                    _ => None,
                }) else {
                    return;
                };
                let to = ColumnType::of(target);
                let from = self
                    .known
                    .columns
                    .iter()
                    .rev()
                    .find(|(t, c, _)| t.matches(rel) && *c == cmd.name)
                    .map(|(_, _, ty)| ty.clone());
                let message = format!(
                    "changing the type of {rel}.{} to {} rewrites the table and its indexes \
                     under ACCESS EXCLUSIVE, unless the new type is binary-compatible",
                    cmd.name, to.name
                );
                let hint = "add a column of the new type, write both, backfill in batches, \
                            switch reads, then drop the old column; the trace of \
                            `groundwork migrate lint` shows whether this change rewrites";
                match from {
                    Some(from) if from.binary_compatible_to(&to) => {}
                    // The old type is unknown here: text or unbounded varchar is
                    // binary-compatible with varchar(n), the usual reason.
                    None if to.name == "text"
                        || to.name == "varchar" && to.modifiers.is_empty() =>
                    {
                        self.found.push(self.location.finding(
                            Warning,
                            "changing-column-type",
                            message,
                            hint,
                            Origin::Static,
                        ));
                    }
                    _ => self.report("changing-column-type", message, hint),
                }
                self.known.columns.push((rel.clone(), cmd.name.clone(), to));
            }
            AlterTableType::AtSetNotNull if !new => {
                let covered = self
                    .known
                    .not_null_checked
                    .iter()
                    .any(|(t, c)| t.matches(rel) && *c == cmd.name);
                if !covered {
                    self.report(
                        "adding-not-nullable-field",
                        format!(
                            "SET NOT NULL on {rel}.{} scans the whole table under ACCESS EXCLUSIVE",
                            cmd.name
                        ),
                        format!(
                            "ADD CONSTRAINT {0}_not_null CHECK ({0} IS NOT NULL) NOT VALID; \
                             VALIDATE CONSTRAINT in a later migration; then SET NOT NULL (it uses \
                             the validated check) and drop the check",
                            cmd.name
                        ),
                    );
                }
            }
            AlterTableType::AtDropNotNull if !new => self.report(
                "ban-drop-not-null",
                format!(
                    "dropping NOT NULL on {rel}.{} lets NULLs reach code that does not expect them",
                    cmd.name
                ),
                "make every reader handle NULL first, then drop the constraint",
            ),
            AlterTableType::AtDropColumn if !new => self.report(
                "ban-drop-column",
                format!(
                    "dropping column {rel}.{} breaks code still reading or writing it",
                    cmd.name
                ),
                "stop using the column in a release first, then drop it in a later migration",
            ),
            AlterTableType::AtAddConstraint => {
                if let Some(NodeEnum::Constraint(c)) = def {
                    self.remember_not_null_check(rel, c, new || !c.skip_validation);
                    if !new {
                        self.add_constraint(rel, c);
                    }
                    if c.skip_validation && !c.conname.is_empty() {
                        self.file.not_valid.push((rel.clone(), c.conname.clone()));
                        self.known.not_valid.push((
                            rel.clone(),
                            c.conname.clone(),
                            not_null_column(c),
                        ));
                    }
                }
            }
            AlterTableType::AtValidateConstraint => {
                let same_file = self
                    .file
                    .not_valid
                    .iter()
                    .any(|(t, name)| t.matches(rel) && *name == cmd.name);
                if same_file && self.transactional && !new {
                    self.report(
                        "constraint-missing-not-valid",
                        format!(
                            "constraint {} on {rel} is validated in the transaction that added \
                             it, so the lock that blocks writes is held through the scan",
                            cmd.name
                        ),
                        "VALIDATE CONSTRAINT in a later migration than the NOT VALID add",
                    );
                }
                let column = self
                    .known
                    .not_valid
                    .iter()
                    .find(|(t, name, _)| t.matches(rel) && *name == cmd.name)
                    .and_then(|(_, _, column)| column.clone());
                if let Some(column) = column {
                    self.known.not_null_checked.push((rel.clone(), column));
                }
            }
            AlterTableType::AtSetLogged
            | AlterTableType::AtSetUnLogged
            | AlterTableType::AtSetTableSpace
            | AlterTableType::AtSetAccessMethod
                if !new =>
            {
                self.report(
                    "ban-table-rewrite",
                    format!("this ALTER TABLE rewrites {rel} under ACCESS EXCLUSIVE"),
                    "create a new table and copy in batches, or do it outside migrations",
                )
            }
            _ => {}
        }
    }

    fn add_column(&mut self, rel: &Rel, column: &ColumnDef) {
        let col = &column.colname;
        let mut not_null = column.is_not_null;
        let mut default = column.raw_default.as_deref().and_then(|d| d.node.as_ref());
        let mut generated_or_identity = !column.identity.is_empty();
        let serial = column
            .type_name
            .as_ref()
            .is_some_and(|t| type_name(t).contains("serial"));
        for c in constraints(column) {
            match c.contype() {
                ConstrType::ConstrNotnull => not_null = true,
                ConstrType::ConstrDefault => {
                    default = c.raw_expr.as_deref().and_then(|e| e.node.as_ref())
                }
                ConstrType::ConstrIdentity => generated_or_identity = true,
                ConstrType::ConstrGenerated => {
                    self.report(
                        "adding-field-with-default",
                        format!(
                            "adding the stored generated column {rel}.{col} rewrites the table \
                             under ACCESS EXCLUSIVE"
                        ),
                        "add a plain nullable column, fill it in batches and keep it current \
                         with a trigger",
                    );
                    generated_or_identity = true;
                }
                ConstrType::ConstrPrimary => self.report(
                    "adding-serial-primary-key-field",
                    format!(
                        "adding {rel}.{col} as a primary key builds its index under ACCESS \
                         EXCLUSIVE"
                    ),
                    "add the column, CREATE UNIQUE INDEX CONCURRENTLY, then ADD CONSTRAINT ... \
                     PRIMARY KEY USING INDEX",
                ),
                ConstrType::ConstrUnique => self.report(
                    "disallowed-unique-constraint",
                    format!("adding {rel}.{col} UNIQUE builds its index under ACCESS EXCLUSIVE"),
                    "add the column, CREATE UNIQUE INDEX CONCURRENTLY, then ADD CONSTRAINT ... \
                     UNIQUE USING INDEX",
                ),
                ConstrType::ConstrForeign => self.report(
                    "adding-foreign-key-constraint",
                    format!(
                        "adding {rel}.{col} with REFERENCES locks {rel} and the referenced table \
                         against writes"
                    ),
                    "add the column, then ADD CONSTRAINT ... FOREIGN KEY ... NOT VALID and \
                     VALIDATE CONSTRAINT in a later migration",
                ),
                ConstrType::ConstrCheck if !c.skip_validation => self.report(
                    "constraint-missing-not-valid",
                    format!(
                        "the CHECK on new column {rel}.{col} is validated against every row \
                         under ACCESS EXCLUSIVE"
                    ),
                    "add the column, then ADD CONSTRAINT ... CHECK (...) NOT VALID and \
                     VALIDATE CONSTRAINT in a later migration",
                ),
                _ => {}
            }
        }
        if serial {
            self.report(
                "adding-field-with-default",
                format!("adding the serial column {rel}.{col} rewrites the table to number it"),
                "add a nullable bigint column with a sequence default for new rows, then \
                 backfill in batches",
            );
        } else if !column.identity.is_empty()
            || constraints(column).any(|c| c.contype() == ConstrType::ConstrIdentity)
        {
            self.report(
                "adding-field-with-default",
                format!("adding the identity column {rel}.{col} rewrites the table to number it"),
                "add a nullable bigint column with a sequence default for new rows, then \
                 backfill in batches",
            );
        } else if let Some(default) = default
            && let Some(function) = volatile_call(default)
        {
            self.report(
                "adding-field-with-default",
                format!(
                    "adding {rel}.{col} with the volatile default {function}() rewrites the \
                     table under ACCESS EXCLUSIVE"
                ),
                "add the column without a default (or with a constant one), SET DEFAULT for \
                 new rows, then backfill existing rows in batches",
            );
        }
        if not_null && default.is_none() && !generated_or_identity && !serial {
            self.report(
                "adding-required-field",
                format!(
                    "adding {rel}.{col} NOT NULL without a default fails on a table that has rows"
                ),
                "add it with a constant DEFAULT (no rewrite since PostgreSQL 11), or nullable, \
                 backfill, then a validated CHECK and SET NOT NULL",
            );
        }
    }

    fn add_constraint(&mut self, rel: &Rel, c: &Constraint) {
        let name = if c.conname.is_empty() {
            "a constraint".to_owned()
        } else {
            format!("constraint {}", c.conname)
        };
        match c.contype() {
            ConstrType::ConstrCheck if !c.skip_validation => self.report(
                "constraint-missing-not-valid",
                format!(
                    "adding {name} to {rel} checks every row under ACCESS EXCLUSIVE, blocking \
                     reads and writes"
                ),
                "ADD CONSTRAINT ... CHECK (...) NOT VALID, then VALIDATE CONSTRAINT in a later \
                 migration (it takes SHARE UPDATE EXCLUSIVE only)",
            ),
            ConstrType::ConstrForeign if !c.skip_validation => self.report(
                "adding-foreign-key-constraint",
                format!(
                    "adding {name} to {rel} scans it while blocking writes to it and to the \
                     referenced table"
                ),
                "ADD CONSTRAINT ... FOREIGN KEY ... NOT VALID, then VALIDATE CONSTRAINT in a \
                 later migration",
            ),
            ConstrType::ConstrPrimary if c.indexname.is_empty() => self.report(
                "adding-serial-primary-key-field",
                format!("adding a primary key to {rel} builds its index under ACCESS EXCLUSIVE"),
                "CREATE UNIQUE INDEX CONCURRENTLY first, then ADD CONSTRAINT ... PRIMARY KEY \
                 USING INDEX",
            ),
            ConstrType::ConstrUnique if c.indexname.is_empty() => self.report(
                "disallowed-unique-constraint",
                format!("adding {name} UNIQUE to {rel} builds its index under ACCESS EXCLUSIVE"),
                "CREATE UNIQUE INDEX CONCURRENTLY first, then ADD CONSTRAINT ... UNIQUE USING \
                 INDEX",
            ),
            ConstrType::ConstrExclusion => self.report(
                "adding-exclusion-constraint",
                format!("adding exclusion {name} to {rel} checks every row under ACCESS EXCLUSIVE"),
                "exclusion constraints cannot be added NOT VALID: add them when the table is \
                 created, or enforce the rule another way",
            ),
            _ => {}
        }
    }

    /// A validated `CHECK (col IS NOT NULL)` lets a later `SET NOT NULL` skip its scan.
    fn remember_not_null_check(&mut self, rel: &Rel, c: &Constraint, validated: bool) {
        if c.contype() == ConstrType::ConstrCheck
            && validated
            && let Some(column) = not_null_column(c)
        {
            self.known.not_null_checked.push((rel.clone(), column));
        }
    }

    /// The type-choice rules, for a column being created.
    fn column_types(&mut self, rel: &Rel, column: &ColumnDef, keys: &HashSet<String>) {
        let Some(type_name_node) = &column.type_name else {
            return;
        };
        let ty = type_name(type_name_node);
        let col = &column.colname;
        self.known
            .columns
            .push((rel.clone(), col.clone(), ColumnType::of(type_name_node)));
        let identity = !column.identity.is_empty()
            || constraints(column).any(|c| {
                matches!(
                    c.contype(),
                    ConstrType::ConstrIdentity | ConstrType::ConstrPrimary
                )
            });
        let key = identity || keys.contains(col) || ty.contains("serial");
        match ty.as_str() {
            "int4" | "serial" | "serial4" if key => self.report(
                "prefer-bigint-over-int",
                format!("key column {rel}.{col} is a 32-bit integer; it runs out at 2^31"),
                "use bigint (bigint GENERATED ALWAYS AS IDENTITY for a generated key)",
            ),
            "int2" | "smallserial" | "serial2" if key => self.report(
                "prefer-bigint-over-smallint",
                format!("key column {rel}.{col} is a 16-bit integer; it runs out at 32767"),
                "use bigint (bigint GENERATED ALWAYS AS IDENTITY for a generated key)",
            ),
            _ => {}
        }
        if ty.contains("serial") {
            self.report(
                "prefer-identity",
                format!("{rel}.{col} is {ty}"),
                "use bigint GENERATED ALWAYS AS IDENTITY: the sequence belongs to the column \
                 and its privileges follow the table's",
            );
        }
        if ty == "varchar" && !type_name_node.typmods.is_empty() {
            self.report(
                "prefer-text-field",
                format!("{rel}.{col} is varchar(n); changing n later locks the table"),
                "use text with a CHECK (length(col) <= n) constraint, or a domain",
            );
        }
        if ty == "timestamp" {
            self.report(
                "prefer-timestamptz",
                format!("{rel}.{col} is timestamp without time zone"),
                "use timestamptz: it stores an instant, whatever the session's time zone",
            );
        }
        if ty == "bpchar" {
            self.report(
                "ban-char-field",
                format!("{rel}.{col} is char(n), padded with blanks"),
                "use text (with a CHECK on its length if it matters)",
            );
        }
    }
}

fn constraints(column: &ColumnDef) -> impl Iterator<Item = &Constraint> {
    column.constraints.iter().filter_map(|c| match &c.node {
        Some(NodeEnum::Constraint(c)) => Some(&**c),
        _ => None,
    })
}

/// The primary key and unique columns of a new table.
fn key_columns(
    elements: &[pg_query::protobuf::Node],
    constraints: &[pg_query::protobuf::Node],
) -> HashSet<String> {
    let mut keys = HashSet::new();
    for node in elements.iter().chain(constraints) {
        if let Some(NodeEnum::Constraint(c)) = &node.node
            && c.contype() == ConstrType::ConstrPrimary
        {
            keys.extend(strings(&c.keys));
        }
    }
    keys
}

/// The column of `CHECK (column IS NOT NULL)`.
fn not_null_column(c: &Constraint) -> Option<String> {
    if c.contype() != ConstrType::ConstrCheck {
        return None;
    }
    match c.raw_expr.as_deref()?.node.as_ref()? {
        NodeEnum::NullTest(test) if test.nulltesttype() == NullTestType::IsNotNull => {
            match test.arg.as_deref()?.node.as_ref()? {
                NodeEnum::ColumnRef(column) => strings(&column.fields).pop(),
                _ => None,
            }
        }
        _ => None,
    }
}

/// The names of String nodes.
fn strings(nodes: &[pg_query::protobuf::Node]) -> Vec<String> {
    nodes
        .iter()
        .filter_map(|n| match &n.node {
            Some(NodeEnum::String(s)) => Some(s.sval.clone()),
            _ => None,
        })
        .collect()
}

/// A type's name without `pg_catalog.`: `int4`, `varchar`, `timestamptz`, `serial`.
fn type_name(t: &TypeName) -> String {
    strings(&t.names).pop().unwrap_or_default().to_lowercase()
}

/// Whether a `WITH (...)`/`(...)` option list has `name`.
fn has_option(options: &[pg_query::protobuf::Node], name: &str) -> bool {
    options.iter().any(|o| match &o.node {
        Some(NodeEnum::DefElem(d)) => d.defname.eq_ignore_ascii_case(name),
        _ => false,
    })
}

/// Functions whose result changes per row: a default calling one cannot be stored
/// once in the catalog and makes `ADD COLUMN` rewrite the table.
const VOLATILE: &[&str] = &[
    "random",
    "gen_random_uuid",
    "uuid_generate_v1",
    "uuid_generate_v1mc",
    "uuid_generate_v4",
    "clock_timestamp",
    "timeofday",
    "nextval",
    "txid_current",
    "random_normal",
];

/// The first volatile function `node` calls.
fn volatile_call(node: &NodeEnum) -> Option<String> {
    let mut calls = node.nodes().into_iter().filter_map(|(n, ..)| match n {
        NodeRef::FuncCall(call) => strings(&call.funcname).pop(),
        _ => None,
    });
    let own = match node {
        NodeEnum::FuncCall(call) => strings(&call.funcname).pop(),
        _ => None,
    };
    own.into_iter()
        .chain(&mut calls)
        .find(|name| VOLATILE.contains(&name.to_lowercase().as_str()))
}
