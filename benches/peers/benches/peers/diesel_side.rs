//! diesel with diesel-async: a `table!` for each table, the DSL for each query, a
//! one-connection deadpool.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::pooled_connection::AsyncDieselConnectionManager;
use diesel_async::pooled_connection::deadpool::Pool;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use serde_json::Value;
use uuid::Uuid;

use crate::queries::{Fixture, Op, slugs};

mod schema {
    pub mod sql_types {
        #[derive(diesel::sql_types::SqlType, diesel::query_builder::QueryId)]
        #[diesel(postgres_type(name = "organization_status", schema = "identity"))]
        pub struct OrganizationStatus;
    }

    diesel::table! {
        use diesel::sql_types::*;
        use super::sql_types::OrganizationStatus;

        identity.organizations (id) {
            id -> Uuid,
            name -> Text,
            slug -> Text,
            status -> OrganizationStatus,
            settings -> Jsonb,
            metadata -> Jsonb,
            created_by -> Nullable<Uuid>,
            updated_by -> Nullable<Uuid>,
            created_at -> Timestamptz,
            updated_at -> Timestamptz,
        }
    }

    diesel::table! {
        identity.organization_members (id) {
            id -> Uuid,
            organization_id -> Uuid,
            user_id -> Nullable<Uuid>,
            joined_at -> Nullable<Timestamptz>,
            created_at -> Timestamptz,
        }
    }

    diesel::table! {
        identity.users (id) {
            id -> Uuid,
            email -> Text,
            username -> Text,
            first_name -> Nullable<Text>,
            last_name -> Nullable<Text>,
        }
    }

    diesel::allow_tables_to_appear_in_same_query!(organizations, organization_members, users);
}

use schema::{organization_members, organizations, users};

#[derive(Debug, diesel::deserialize::FromSqlRow)]
pub enum Status {
    Active,
    Suspended,
    Archived,
}

impl diesel::deserialize::FromSql<schema::sql_types::OrganizationStatus, diesel::pg::Pg>
    for Status
{
    fn from_sql(value: diesel::pg::PgValue<'_>) -> diesel::deserialize::Result<Self> {
        match value.as_bytes() {
            b"active" => Ok(Self::Active),
            b"suspended" => Ok(Self::Suspended),
            b"archived" => Ok(Self::Archived),
            other => Err(format!("unknown organization status {other:?}").into()),
        }
    }
}

#[derive(Debug, Queryable, Selectable)]
#[diesel(table_name = organizations, check_for_backend(diesel::pg::Pg))]
#[allow(dead_code)]
pub struct Org {
    pub id: Uuid,
    pub name: String,
    pub slug: String,
    pub status: Status,
    pub settings: Value,
    pub metadata: Value,
    pub created_by: Option<Uuid>,
    pub updated_by: Option<Uuid>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

type MemberRow = (
    Uuid,
    Option<Uuid>,
    Option<DateTime<Utc>>,
    DateTime<Utc>,
    String,
    String,
    Option<String>,
    Option<String>,
);

/// One connection from a diesel-async deadpool, checked out once (as for every
/// contestant).
pub struct Diesel {
    conn: diesel_async::pooled_connection::deadpool::Object<AsyncPgConnection>,
}

impl Diesel {
    pub async fn connect(url: &str) -> Self {
        let manager = AsyncDieselConnectionManager::<AsyncPgConnection>::new(url);
        let pool = Pool::builder(manager).max_size(1).build().unwrap();
        Self {
            conn: pool.get().await.unwrap(),
        }
    }

    pub async fn run(&mut self, op: Op, f: &Fixture, seq: &mut u64) -> usize {
        let conn = &mut *self.conn;
        match op {
            Op::Get => organizations::table
                .filter(organizations::id.eq(f.org))
                .select(Org::as_select())
                .first(conn)
                .await
                .unwrap()
                .name
                .len(),
            Op::List100 | Op::List10k => {
                let limit: i64 = if op == Op::List100 { 100 } else { 10_000 };
                organizations::table
                    .order((organizations::created_at, organizations::id))
                    .limit(limit)
                    .select(Org::as_select())
                    .load(conn)
                    .await
                    .unwrap()
                    .len()
            }
            Op::Join100 => organization_members::table
                .inner_join(users::table.on(organization_members::user_id.eq(users::id.nullable())))
                .filter(organization_members::organization_id.eq(f.member_org))
                .order(organization_members::id)
                .limit(100)
                .select((
                    organization_members::id,
                    organization_members::user_id,
                    organization_members::joined_at,
                    organization_members::created_at,
                    users::email,
                    users::username,
                    users::first_name,
                    users::last_name,
                ))
                .load::<MemberRow>(conn)
                .await
                .unwrap()
                .len(),
            Op::Insert1 => {
                let (names, slugs) = slugs("diesel", seq, 1);
                diesel::insert_into(organizations::table)
                    .values((
                        organizations::name.eq(&names[0]),
                        organizations::slug.eq(&slugs[0]),
                        organizations::settings.eq(serde_json::json!({})),
                        organizations::metadata.eq(serde_json::json!({})),
                    ))
                    .returning(Org::as_returning())
                    .get_result(conn)
                    .await
                    .unwrap()
                    .name
                    .len()
            }
            Op::Insert100 => {
                let (names, slugs) = slugs("diesel", seq, 100);
                let rows: Vec<_> = names
                    .iter()
                    .zip(&slugs)
                    .map(|(name, slug)| {
                        (
                            organizations::name.eq(name),
                            organizations::slug.eq(slug),
                            organizations::settings.eq(serde_json::json!({})),
                            organizations::metadata.eq(serde_json::json!({})),
                        )
                    })
                    .collect();
                diesel::insert_into(organizations::table)
                    .values(&rows)
                    .returning(Org::as_returning())
                    .get_results(conn)
                    .await
                    .unwrap()
                    .len()
            }
        }
    }
}
