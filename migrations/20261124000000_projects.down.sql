-- Why: undoes 20261124000000_projects: everything it made lives in the projects
-- schema.

DROP SCHEMA projects CASCADE;
