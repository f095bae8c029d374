-- payments.payment_transactions (migrations/20261206600100_payments.up.sql): id,
-- organization_id, payment_id, kind, amount, status_after, refund_id, actor_id,
-- created_at. One row per state change and refund, written by triggers; append-only.

--: PaymentTransaction(refund_id?, actor_id?)

--! payment_transaction_list : PaymentTransaction
SELECT id, payment_id, kind, amount, status_after, refund_id, actor_id, created_at
FROM payments.payment_transactions
WHERE organization_id = identity.current_org_id() AND payment_id = :payment_id
ORDER BY id;
