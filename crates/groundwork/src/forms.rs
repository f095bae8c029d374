//! The forms engine (the `forms` schema, seed 004): versioned form definitions whose
//! JSON Schema (draft 2020-12) is checked when saved, and submissions validated against
//! it by the database on every write. Single statements are the generated queries
//! (`groundwork::queries::forms::*`); this module holds the operations that take more
//! than one.
//!
//! | rule | SQLSTATE | error |
//! |---|---|---|
//! | a definition's schema is well formed and uses supported keywords only | GWF01 | [`Error::InvalidSchema`] ([`Error::schema_path`]) |
//! | submission data matches its form's schema (every error reported) | GWF02 | [`Error::ValidationFailed`] ([`Error::validation_errors`]) |
//! | submissions go to the active version of a form | GWF03 | [`Error::FormNotActive`] |
//! | active and archived definitions do not change | GWF04 | [`Error::Immutable`] |
//! | definition draft -> active -> archived; submission draft -> submitted -> approved / rejected, draft / submitted -> withdrawn | GWF05 | [`Error::InvalidTransition`] |
//! | at most one active version per name | 23505 | [`Error::Conflict`] |
//!
//! Every change appends an event to the definition's (`form`) or the submission's
//! (`form_submission`) stream in the same transaction, with the acting user as
//! metadata. Work in a transaction with the tenant set ([`crate::tenant::Tenant`]).

use serde_json::Value;
use uuid::Uuid;

use crate::Error;
use crate::client::async_::{GenericClient, Params};
use crate::error::ValidationError;
use crate::queries::forms::form_definitions::{
    FormDefinition, FormDefinitionUpdateParams, FormDefinitionValidateParams,
    form_definition_new_version, form_definition_update, form_definition_validate,
};

/// Every error `data` would have as a submission to the definition `definition_id`
/// (empty when valid); writes nothing. `None` when the definition is not visible.
pub async fn validate<C: GenericClient>(
    client: &C,
    definition_id: Uuid,
    data: &Value,
) -> Result<Option<Vec<ValidationError>>, Error> {
    let errors = form_definition_validate()
        .params(
            client,
            &FormDefinitionValidateParams {
                data,
                id: definition_id,
            },
        )
        .opt()
        .await?;
    errors
        .map(|errors| {
            serde_json::from_value(errors).map_err(|e| {
                Error::Config(format!(
                    "forms.json_schema_errors returned an unexpected shape: {e}"
                ))
            })
        })
        .transpose()
}

/// A draft of the next version of the form of `definition_id`, with a new
/// definition (its schema checked), in one transaction when `client` is one.
pub async fn new_version<C: GenericClient>(
    client: &C,
    definition_id: Uuid,
    definition: &Value,
    assert_formats: bool,
) -> Result<FormDefinition, Error> {
    let draft = form_definition_new_version()
        .bind(client, &definition_id)
        .one()
        .await?;
    Ok(form_definition_update()
        .params(
            client,
            &FormDefinitionUpdateParams {
                definition,
                assert_formats,
                id: draft.id,
            },
        )
        .one()
        .await?)
}
