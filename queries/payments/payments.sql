-- payments.payments (migrations/20261206600100_payments.up.sql): id, organization_id,
-- order_id, user_id, payment_method_id, status, currency, amount, captured_amount,
-- refunded_amount, provider_reference, expires_at, authorized_at, captured_at,
-- settled_at, voided_at, created_at, updated_at. authorized -> captured -> settled,
-- authorized -> voided or expired, captured or settled -> refunded; written only by
-- the functions.

--: Payment(captured_amount?, captured_at?, settled_at?, voided_at?)
--: PaymentAnalytics(capture_rate?)

--- Authorizes the current user's pending order on one of the user's methods; returns
--- the payment's id. WY004 unusable method, WY005 order not payable, WY006 expired.
--! payment_authorize
SELECT payments.process_payment_authorization(:order_id, :payment_method_id) AS id;

--- Captures an authorized payment, all of it (amount NULL) or part: the order is paid
--- and its stock sold. WY002 when it is not authorized, WY003 above the authorized
--- amount, WY006 when the authorization expired.
--! payment_capture (amount?)
SELECT true AS done FROM payments.capture_payment(:payment_id, :amount);

--- Marks a captured payment settled; WY002 otherwise.
--! payment_settle
SELECT true AS done FROM payments.settle_payment(:payment_id);

--- Voids an authorized payment; WY002 otherwise.
--! payment_void
SELECT true AS done FROM payments.void_payment(:payment_id);

--- Expires the tenant's authorizations past their time with their pending orders (at
--- most 10,000); returns how many.
--! payment_cleanup_expired
SELECT payments.cleanup_expired_payments() AS expired;

--! payment_get : Payment
SELECT id, organization_id, order_id, user_id, payment_method_id, status, currency, amount,
       captured_amount, refunded_amount, provider_reference, expires_at, authorized_at, captured_at,
       settled_at, voided_at, created_at, updated_at
FROM payments.payments
WHERE organization_id = identity.current_org_id() AND id = :id;

--- An order's payments, oldest first.
--! payment_list_for_order : Payment
SELECT id, organization_id, order_id, user_id, payment_method_id, status, currency, amount,
       captured_amount, refunded_amount, provider_reference, expires_at, authorized_at, captured_at,
       settled_at, voided_at, created_at, updated_at
FROM payments.payments
WHERE organization_id = identity.current_org_id() AND order_id = :order_id
ORDER BY created_at, id;

--- payments.payment_analytics: per day and currency, newest first.
--! payment_analytics_list : PaymentAnalytics
SELECT day, currency, payments, captured_payments, authorized_amount, captured_amount,
       refunded_amount, voided_or_expired, capture_rate, disputes_opened, disputed_amount
FROM payments.payment_analytics
WHERE organization_id = identity.current_org_id()
ORDER BY day DESC, currency
LIMIT :limit;
