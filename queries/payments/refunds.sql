-- payments.refunds (migrations/20261206600100_payments.up.sql): id, organization_id,
-- payment_id, amount, reason, requested_by, created_at. Append-only; their sum never
-- exceeds the payment's captured amount.

--: Refund(requested_by?)

--- Refunds part or all of a captured payment; returns the refund's id. WY002 before
--- capture, WY003 above what is left to refund.
--! refund_create
SELECT payments.refund_payment(:payment_id, :amount, :reason) AS id;

--! refund_list : Refund
SELECT id, payment_id, amount, reason, requested_by, created_at
FROM payments.refunds
WHERE organization_id = identity.current_org_id() AND payment_id = :payment_id
ORDER BY created_at, id;
