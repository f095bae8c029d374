-- Why: undoes 20261201000400_projects: everything it made lives in the projects
-- schema.

DROP SCHEMA projects CASCADE;
