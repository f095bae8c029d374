-- expect: ban-table-rewrite table-rewrite
CLUSTER orders USING orders_pkey;
