-- quiet: renaming-table
-- groundwork:lint allow renaming-table because the previous release reads purchases through a view
ALTER TABLE orders RENAME TO purchases;
