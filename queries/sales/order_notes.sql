-- sales.order_notes (migrations/20261206600000_sales.up.sql): id, organization_id,
-- order_id, author_id, body (1 to 4,000 characters), internal, created_at.

--: OrderNote(author_id?)

--! order_note_add : OrderNote
INSERT INTO sales.order_notes (order_id, body, internal) VALUES (:order_id, :body, :internal)
RETURNING id, order_id, author_id, body, internal, created_at;

--! order_note_list : OrderNote
SELECT id, order_id, author_id, body, internal, created_at
FROM sales.order_notes
WHERE organization_id = identity.current_org_id() AND order_id = :order_id
ORDER BY created_at, id;
