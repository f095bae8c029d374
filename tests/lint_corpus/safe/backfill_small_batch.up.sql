-- quiet: lock-held-while-scanning
UPDATE accounts SET name = 'first' WHERE id = 1;
