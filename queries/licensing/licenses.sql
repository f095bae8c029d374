--: License(renewed_at?)

--- Issues a licence of the current tenant to a holder. Seats 1 to 100000, starts_at
--- before ends_at (23514 licenses_seats_range, licenses_period).
--! license_create (starts_at?) : License
INSERT INTO licensing.licenses (user_id, plan, status, seats, starts_at, ends_at, features,
                                auto_renew)
VALUES (:user_id, :plan, :status, :seats, COALESCE(:starts_at, now()), :ends_at, :features,
        :auto_renew)
RETURNING id, user_id, plan, status, seats, seats_assigned, starts_at, ends_at, features,
          auto_renew, renewed_at, created_at, updated_at;

--! license_get : License
SELECT id, user_id, plan, status, seats, seats_assigned, starts_at, ends_at, features,
       auto_renew, renewed_at, created_at, updated_at
FROM licensing.licenses
WHERE organization_id = identity.current_org_id() AND id = :id;

--- A holder's licences, newest first.
--! license_list_by_holder : License
SELECT id, user_id, plan, status, seats, seats_assigned, starts_at, ends_at, features,
       auto_renew, renewed_at, created_at, updated_at
FROM licensing.licenses
WHERE organization_id = identity.current_org_id() AND user_id = :user_id
ORDER BY created_at DESC, id;

--- Changes the status (trial -> active, suspended, expired, cancelled; active ->
--- suspended, expired, cancelled; suspended -> active, expired, cancelled; expired ->
--- active after a renewal; WL004 otherwise).
--! license_status_set : License
UPDATE licensing.licenses SET status = :status
WHERE organization_id = identity.current_org_id() AND id = :id
RETURNING id, user_id, plan, status, seats, seats_assigned, starts_at, ends_at, features,
          auto_renew, renewed_at, created_at, updated_at;

--- Null arguments keep the current value. Fewer seats than are assigned is 23514
--- (licenses_seats_in_use).
--! license_update (seats?, ends_at?, features?, auto_renew?) : License
UPDATE licensing.licenses
SET seats = COALESCE(:seats, seats),
    ends_at = COALESCE(:ends_at, ends_at),
    features = COALESCE(:features, features),
    auto_renew = COALESCE(:auto_renew, auto_renew)
WHERE organization_id = identity.current_org_id() AND id = :id
RETURNING id, user_id, plan, status, seats, seats_assigned, starts_at, ends_at, features,
          auto_renew, renewed_at, created_at, updated_at;

--- Whether the user may use the feature now (licensing.has_entitlement).
--! license_has_entitlement
SELECT licensing.has_entitlement(:user_id, :feature) AS entitled;

--- Renews what auto-renews and expires the rest, for the current tenant: the number of
--- licences changed.
--! license_process_expirations
SELECT licensing.process_expirations() AS changed;
