-- payments.payment_methods (migrations/20261206600100_payments.up.sql): id,
-- organization_id, user_id, kind, token, brand, last_four, exp_month, exp_year,
-- is_default, removed_at, created_at, updated_at. A provider's token, never a card
-- number; row-level security shows the current user's methods only.

--: PaymentMethod(brand?, last_four?, exp_month?, exp_year?, removed_at?)

--- Stores a tokenised method for the current user.
--! payment_method_add (brand?, last_four?, exp_month?, exp_year?) : PaymentMethod
INSERT INTO payments.payment_methods (kind, token, brand, last_four, exp_month, exp_year)
VALUES (:kind, :token, :brand, :last_four, :exp_month, :exp_year)
RETURNING id, organization_id, user_id, kind, token, brand, last_four, exp_month, exp_year,
          is_default, removed_at, created_at, updated_at;

--- Makes it the current user's default method; WY004 when it is not the user's.
--! payment_method_set_default
SELECT true AS done FROM payments.set_default_payment_method(:id);

--- Removes it (it stays for the payments made with it); no row when it is not the
--- user's or is the default.
--! payment_method_remove : PaymentMethod
UPDATE payments.payment_methods SET removed_at = now()
WHERE organization_id = identity.current_org_id() AND id = :id AND removed_at IS NULL AND NOT is_default
RETURNING id, organization_id, user_id, kind, token, brand, last_four, exp_month, exp_year,
          is_default, removed_at, created_at, updated_at;

--- The current user's methods in use, the default first.
--! payment_method_list : PaymentMethod
SELECT id, organization_id, user_id, kind, token, brand, last_four, exp_month, exp_year,
       is_default, removed_at, created_at, updated_at
FROM payments.payment_methods
WHERE organization_id = identity.current_org_id() AND user_id = identity.current_user_id()
  AND removed_at IS NULL
ORDER BY is_default DESC, created_at, id;
