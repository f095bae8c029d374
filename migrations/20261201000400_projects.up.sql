-- Why: project management (docs/REQUIREMENTS.md, "projects"): projects, members,
-- tasks with parents and dependencies, versioned documents and file attachments, per
-- tenant, with the rules enforced by the database:
--
-- * access: a project and everything in it is visible only to its
--   owner and its members; owners, admins and members write, viewers only read;
--   owners and admins manage the project and its members; an archived project is
--   read-only until an owner or admin restores it. Refusals are SQLSTATE WP002
--   (read-only) and WP003 (not a member of the project).
-- * no cycles of any length among task parents or among task dependencies, also when
--   transactions change them concurrently: every change to a project's task graph
--   first updates the project's guard row (projects.graph_guards), so such changes
--   take turns per project, and the check then sees every committed edge. A cycle is
--   SQLSTATE WP001.
-- * a document edit (new content) bumps documents.version and writes that version to
--   document_versions in the same statement; the row lock serialises concurrent edits,
--   so versions are 1..n without gaps. Versions are written only by the database.
-- * publishing sets published_at; a task becomes done only when every task it depends
--   on with dependency type 'blocks' is done or cancelled (SQLSTATE WP004 otherwise),
--   and done sets completed_at.
-- * attachments point at the project, or a task or document of the same project, by
--   foreign keys on generated columns: they go with what they are attached to.

CREATE SCHEMA projects;

CREATE TYPE projects.project_status AS ENUM ('active', 'completed', 'archived', 'cancelled');
CREATE TYPE projects.project_visibility AS ENUM ('private', 'internal', 'public');
CREATE TYPE projects.project_role AS ENUM ('owner', 'admin', 'member', 'viewer');
CREATE TYPE projects.task_status AS ENUM ('pending', 'in_progress', 'review', 'done', 'cancelled', 'blocked');
CREATE TYPE projects.task_priority AS ENUM ('low', 'medium', 'high', 'urgent');
CREATE TYPE projects.dependency_type AS ENUM ('blocks', 'relates_to', 'duplicates', 'subtask_of');
CREATE TYPE projects.document_status AS ENUM ('draft', 'review', 'published', 'archived');
CREATE TYPE projects.attachment_entity AS ENUM ('project', 'task', 'document');

CREATE TABLE projects.projects (
    id uuid NOT NULL DEFAULT gen_random_uuid(),
    organization_id uuid NOT NULL DEFAULT identity.current_org_id()
        CONSTRAINT projects_organization_id_fkey
            REFERENCES identity.organizations (id) ON DELETE CASCADE,
    name text NOT NULL
        CONSTRAINT projects_name_length CHECK (char_length(btrim(name)) BETWEEN 1 AND 255),
    description text
        CONSTRAINT projects_description_length CHECK (char_length(description) <= 10000),
    owner_id uuid NOT NULL
        CONSTRAINT projects_owner_id_fkey REFERENCES identity.users (id) ON DELETE RESTRICT,
    status projects.project_status NOT NULL DEFAULT 'active',
    visibility projects.project_visibility NOT NULL DEFAULT 'private',
    settings jsonb NOT NULL DEFAULT '{}'::jsonb
        CONSTRAINT projects_settings_object CHECK (jsonb_typeof(settings) = 'object'),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    archived_at timestamptz,
    CONSTRAINT projects_pkey PRIMARY KEY (organization_id, id),
    CONSTRAINT projects_archived_state CHECK ((status = 'archived') = (archived_at IS NOT NULL))
);

COMMENT ON COLUMN projects.projects.visibility IS
    'Informational: access is by ownership or membership only (docs/REQUIREMENTS.md)';

CREATE INDEX projects_organization_id_owner_id_idx ON projects.projects (organization_id, owner_id);
CREATE INDEX projects_owner_id_idx ON projects.projects (owner_id);
CREATE INDEX projects_status_idx ON projects.projects (status);
CREATE INDEX projects_created_at_id_idx ON projects.projects (created_at, id);
CREATE INDEX projects_settings_gin_idx ON projects.projects USING gin (settings);
CREATE INDEX projects_settings_theme_gin_idx ON projects.projects USING gin ((settings -> 'theme'));

CREATE TABLE projects.project_members (
    id uuid NOT NULL DEFAULT gen_random_uuid(),
    organization_id uuid NOT NULL DEFAULT identity.current_org_id(),
    project_id uuid NOT NULL,
    user_id uuid NOT NULL
        CONSTRAINT project_members_user_id_fkey REFERENCES identity.users (id) ON DELETE CASCADE,
    role projects.project_role NOT NULL DEFAULT 'member'
        CONSTRAINT project_members_role_not_owner CHECK (role <> 'owner'),
    permissions jsonb NOT NULL DEFAULT '{}'::jsonb
        CONSTRAINT project_members_permissions_object CHECK (jsonb_typeof(permissions) = 'object'),
    joined_at timestamptz NOT NULL DEFAULT now(),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT project_members_pkey PRIMARY KEY (organization_id, id),
    CONSTRAINT project_members_project_id_fkey FOREIGN KEY (organization_id, project_id)
        REFERENCES projects.projects (organization_id, id) ON DELETE CASCADE,
    CONSTRAINT project_members_project_id_user_id_key UNIQUE (organization_id, project_id, user_id)
);

COMMENT ON COLUMN projects.project_members.role IS
    'admin, member or viewer; the owner is projects.owner_id';

CREATE INDEX project_members_project_id_role_idx ON projects.project_members (project_id, role);
CREATE INDEX project_members_organization_id_user_id_idx
    ON projects.project_members (organization_id, user_id);
CREATE INDEX project_members_user_id_idx ON projects.project_members (user_id);

CREATE TABLE projects.tasks (
    id uuid NOT NULL DEFAULT gen_random_uuid(),
    organization_id uuid NOT NULL DEFAULT identity.current_org_id(),
    project_id uuid NOT NULL,
    parent_task_id uuid,
    title text NOT NULL
        CONSTRAINT tasks_title_length CHECK (char_length(btrim(title)) BETWEEN 1 AND 255),
    description text
        CONSTRAINT tasks_description_length CHECK (char_length(description) <= 100000),
    status projects.task_status NOT NULL DEFAULT 'pending',
    priority projects.task_priority NOT NULL DEFAULT 'medium',
    assignee_id uuid
        CONSTRAINT tasks_assignee_id_fkey REFERENCES identity.users (id) ON DELETE SET NULL,
    creator_id uuid NOT NULL DEFAULT identity.current_user_id()
        CONSTRAINT tasks_creator_id_fkey REFERENCES identity.users (id) ON DELETE RESTRICT,
    due_date timestamptz,
    estimated_hours integer
        CONSTRAINT tasks_estimated_hours_positive CHECK (estimated_hours > 0),
    actual_hours integer
        CONSTRAINT tasks_actual_hours_positive CHECK (actual_hours > 0),
    tags text[] NOT NULL DEFAULT '{}',
    metadata jsonb NOT NULL DEFAULT '{}'::jsonb
        CONSTRAINT tasks_metadata_object CHECK (jsonb_typeof(metadata) = 'object'),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    completed_at timestamptz,
    CONSTRAINT tasks_pkey PRIMARY KEY (organization_id, id),
    CONSTRAINT tasks_project_id_fkey FOREIGN KEY (organization_id, project_id)
        REFERENCES projects.projects (organization_id, id) ON DELETE CASCADE,
    CONSTRAINT tasks_project_id_id_key UNIQUE (organization_id, project_id, id),
    -- The parent is a task of the same project; its subtasks outlive it, at the top.
    CONSTRAINT tasks_parent_task_id_fkey FOREIGN KEY (organization_id, project_id, parent_task_id)
        REFERENCES projects.tasks (organization_id, project_id, id) ON DELETE SET NULL (parent_task_id),
    CONSTRAINT tasks_not_own_parent CHECK (parent_task_id <> id),
    CONSTRAINT tasks_due_date_after_creation CHECK (due_date > created_at),
    CONSTRAINT tasks_completed_state CHECK ((status = 'done') = (completed_at IS NOT NULL))
);

CREATE INDEX tasks_project_id_idx ON projects.tasks (project_id);
CREATE INDEX tasks_assignee_id_idx ON projects.tasks (assignee_id);
CREATE INDEX tasks_status_idx ON projects.tasks (status);
CREATE INDEX tasks_priority_idx ON projects.tasks (priority);
CREATE INDEX tasks_due_date_idx ON projects.tasks (due_date);
CREATE INDEX tasks_parent_task_id_idx ON projects.tasks (parent_task_id);
CREATE INDEX tasks_project_id_status_idx ON projects.tasks (project_id, status);
CREATE INDEX tasks_assignee_id_status_idx ON projects.tasks (assignee_id, status);
CREATE INDEX tasks_project_id_priority_idx ON projects.tasks (project_id, priority);
-- The board: one project, optionally one status, by priority then id, newest first.
CREATE INDEX tasks_board_idx ON projects.tasks (project_id, status, priority DESC, id DESC);
-- Candidates for "ready to start", in id order for keyset pages.
CREATE INDEX tasks_startable_idx ON projects.tasks (project_id, id) WHERE status IN ('pending', 'blocked');
CREATE INDEX tasks_metadata_gin_idx ON projects.tasks USING gin (metadata);
CREATE INDEX tasks_tags_gin_idx ON projects.tasks USING gin (tags);

CREATE TABLE projects.task_dependencies (
    id uuid NOT NULL DEFAULT gen_random_uuid(),
    organization_id uuid NOT NULL DEFAULT identity.current_org_id(),
    -- Filled from the task; both tasks belong to it.
    project_id uuid NOT NULL,
    task_id uuid NOT NULL,
    depends_on_task_id uuid NOT NULL,
    dependency_type projects.dependency_type NOT NULL DEFAULT 'blocks',
    created_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT task_dependencies_pkey PRIMARY KEY (organization_id, id),
    CONSTRAINT task_dependencies_project_id_fkey FOREIGN KEY (organization_id, project_id)
        REFERENCES projects.projects (organization_id, id) ON DELETE CASCADE,
    CONSTRAINT task_dependencies_task_id_fkey FOREIGN KEY (organization_id, project_id, task_id)
        REFERENCES projects.tasks (organization_id, project_id, id) ON DELETE CASCADE,
    CONSTRAINT task_dependencies_depends_on_task_id_fkey
        FOREIGN KEY (organization_id, project_id, depends_on_task_id)
        REFERENCES projects.tasks (organization_id, project_id, id) ON DELETE CASCADE,
    CONSTRAINT task_dependencies_task_id_depends_on_task_id_key
        UNIQUE (organization_id, task_id, depends_on_task_id),
    CONSTRAINT task_dependencies_no_self_dependency CHECK (task_id <> depends_on_task_id)
);

-- Blockers of a task (by task_id), and what a task blocks (by depends_on_task_id).
CREATE INDEX task_dependencies_task_id_type_idx
    ON projects.task_dependencies (task_id, dependency_type, depends_on_task_id);
CREATE INDEX task_dependencies_depends_on_task_id_type_idx
    ON projects.task_dependencies (depends_on_task_id, dependency_type, task_id);
CREATE INDEX task_dependencies_project_id_idx ON projects.task_dependencies (project_id);

CREATE TABLE projects.documents (
    id uuid NOT NULL DEFAULT gen_random_uuid(),
    organization_id uuid NOT NULL DEFAULT identity.current_org_id(),
    project_id uuid NOT NULL,
    title text NOT NULL
        CONSTRAINT documents_title_length CHECK (char_length(btrim(title)) BETWEEN 1 AND 255),
    content text NOT NULL DEFAULT ''
        CONSTRAINT documents_content_length CHECK (octet_length(content) <= 10485760),
    content_type text NOT NULL DEFAULT 'markdown'
        CONSTRAINT documents_content_type_length CHECK (char_length(content_type) BETWEEN 1 AND 50),
    author_id uuid NOT NULL DEFAULT identity.current_user_id()
        CONSTRAINT documents_author_id_fkey REFERENCES identity.users (id) ON DELETE RESTRICT,
    -- The latest version's number, kept by the database.
    version integer NOT NULL DEFAULT 1
        CONSTRAINT documents_version_positive CHECK (version > 0),
    -- What the latest edit changed; copied into its version row.
    change_summary text
        CONSTRAINT documents_change_summary_length CHECK (char_length(change_summary) <= 1000),
    status projects.document_status NOT NULL DEFAULT 'draft',
    tags text[] NOT NULL DEFAULT '{}',
    metadata jsonb NOT NULL DEFAULT '{}'::jsonb
        CONSTRAINT documents_metadata_object CHECK (jsonb_typeof(metadata) = 'object'),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    published_at timestamptz,
    CONSTRAINT documents_pkey PRIMARY KEY (organization_id, id),
    CONSTRAINT documents_project_id_fkey FOREIGN KEY (organization_id, project_id)
        REFERENCES projects.projects (organization_id, id) ON DELETE CASCADE,
    CONSTRAINT documents_project_id_id_key UNIQUE (organization_id, project_id, id),
    CONSTRAINT documents_published_state CHECK (status <> 'published' OR published_at IS NOT NULL)
);

CREATE INDEX documents_project_id_idx ON projects.documents (project_id);
CREATE INDEX documents_author_id_idx ON projects.documents (author_id);
CREATE INDEX documents_status_idx ON projects.documents (status);
CREATE INDEX documents_created_at_idx ON projects.documents (created_at);
CREATE INDEX documents_project_id_status_idx ON projects.documents (project_id, status);
CREATE INDEX documents_metadata_gin_idx ON projects.documents USING gin (metadata);

CREATE TABLE projects.document_versions (
    id uuid NOT NULL DEFAULT gen_random_uuid(),
    organization_id uuid NOT NULL,
    project_id uuid NOT NULL,
    document_id uuid NOT NULL,
    version_number integer NOT NULL
        CONSTRAINT document_versions_version_number_positive CHECK (version_number > 0),
    content text NOT NULL,
    change_summary text,
    author_id uuid NOT NULL
        CONSTRAINT document_versions_author_id_fkey REFERENCES identity.users (id) ON DELETE RESTRICT,
    created_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT document_versions_pkey PRIMARY KEY (organization_id, id),
    CONSTRAINT document_versions_document_id_fkey FOREIGN KEY (organization_id, project_id, document_id)
        REFERENCES projects.documents (organization_id, project_id, id) ON DELETE CASCADE,
    CONSTRAINT document_versions_document_id_version_number_key
        UNIQUE (organization_id, document_id, version_number)
);

CREATE TABLE projects.file_attachments (
    id uuid NOT NULL DEFAULT gen_random_uuid(),
    organization_id uuid NOT NULL DEFAULT identity.current_org_id(),
    project_id uuid NOT NULL,
    entity_type projects.attachment_entity NOT NULL,
    entity_id uuid NOT NULL,
    -- The entity, by kind: foreign keys keep it in the same project and delete the
    -- attachment with it.
    task_id uuid GENERATED ALWAYS AS (CASE WHEN entity_type = 'task' THEN entity_id END) STORED,
    document_id uuid GENERATED ALWAYS AS (CASE WHEN entity_type = 'document' THEN entity_id END) STORED,
    filename text NOT NULL
        CONSTRAINT file_attachments_filename_not_empty CHECK (char_length(filename) BETWEEN 1 AND 255),
    original_filename text NOT NULL
        CONSTRAINT file_attachments_original_filename_length
            CHECK (char_length(original_filename) BETWEEN 1 AND 255),
    file_size bigint NOT NULL
        CONSTRAINT file_attachments_file_size_positive CHECK (file_size > 0),
    mime_type text NOT NULL
        CONSTRAINT file_attachments_mime_type_format
            CHECK (mime_type ~ '^[a-z0-9!#$&^_.+-]+/[a-z0-9!#$&^_.+-]+$' AND char_length(mime_type) <= 100),
    storage_path text NOT NULL
        CONSTRAINT file_attachments_storage_path_length CHECK (char_length(storage_path) BETWEEN 1 AND 1024),
    uploader_id uuid NOT NULL DEFAULT identity.current_user_id()
        CONSTRAINT file_attachments_uploader_id_fkey REFERENCES identity.users (id) ON DELETE RESTRICT,
    metadata jsonb NOT NULL DEFAULT '{}'::jsonb
        CONSTRAINT file_attachments_metadata_object CHECK (jsonb_typeof(metadata) = 'object'),
    created_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT file_attachments_pkey PRIMARY KEY (organization_id, id),
    CONSTRAINT file_attachments_project_id_fkey FOREIGN KEY (organization_id, project_id)
        REFERENCES projects.projects (organization_id, id) ON DELETE CASCADE,
    CONSTRAINT file_attachments_task_id_fkey FOREIGN KEY (organization_id, project_id, task_id)
        REFERENCES projects.tasks (organization_id, project_id, id) ON DELETE CASCADE,
    CONSTRAINT file_attachments_document_id_fkey FOREIGN KEY (organization_id, project_id, document_id)
        REFERENCES projects.documents (organization_id, project_id, id) ON DELETE CASCADE,
    CONSTRAINT file_attachments_project_entity CHECK (entity_type <> 'project' OR entity_id = project_id)
);

CREATE INDEX file_attachments_project_id_entity_idx
    ON projects.file_attachments (project_id, entity_type, entity_id);
CREATE INDEX file_attachments_task_id_idx ON projects.file_attachments (task_id) WHERE task_id IS NOT NULL;
CREATE INDEX file_attachments_document_id_idx ON projects.file_attachments (document_id)
    WHERE document_id IS NOT NULL;

-- One row per project: changes to its task graph update it first, so they take turns.
CREATE TABLE projects.graph_guards (
    organization_id uuid NOT NULL,
    project_id uuid NOT NULL,
    changes bigint NOT NULL DEFAULT 0,
    CONSTRAINT graph_guards_pkey PRIMARY KEY (organization_id, project_id),
    CONSTRAINT graph_guards_project_id_fkey FOREIGN KEY (organization_id, project_id)
        REFERENCES projects.projects (organization_id, id) ON DELETE CASCADE
);

COMMENT ON TABLE projects.graph_guards IS
    'Serialises task-graph changes per project (parents, dependencies, completion); owner only';

CREATE TRIGGER projects_set_updated_at BEFORE UPDATE ON projects.projects
    FOR EACH ROW EXECUTE FUNCTION public.set_updated_at();
CREATE TRIGGER project_members_set_updated_at BEFORE UPDATE ON projects.project_members
    FOR EACH ROW EXECUTE FUNCTION public.set_updated_at();
CREATE TRIGGER tasks_set_updated_at BEFORE UPDATE ON projects.tasks
    FOR EACH ROW EXECUTE FUNCTION public.set_updated_at();
CREATE TRIGGER documents_set_updated_at BEFORE UPDATE ON projects.documents
    FOR EACH ROW EXECUTE FUNCTION public.set_updated_at();

-- Whether the current user is an active member of the current organization: project
-- access ends with the organization membership.
CREATE FUNCTION projects.in_organization() RETURNS boolean
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, projects, pg_temp
AS $$
    SELECT EXISTS (SELECT FROM identity.organization_members m
                   WHERE m.organization_id = identity.current_org_id()
                     AND m.user_id = identity.current_user_id() AND m.status = 'active')
$$;

-- The current user's role in a project of the current organization: 'owner' for its
-- owner, the member's role, or NULL. Runs as the owner (no policy recursion).
CREATE FUNCTION projects.member_role(p_project_id uuid) RETURNS projects.project_role
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, projects, pg_temp
AS $$
    SELECT CASE WHEN p.owner_id = identity.current_user_id() THEN 'owner'::projects.project_role
                ELSE (SELECT m.role FROM projects.project_members m
                      WHERE m.organization_id = p.organization_id AND m.project_id = p.id
                        AND m.user_id = identity.current_user_id()) END
    FROM projects.projects p
    WHERE p.id = p_project_id AND p.organization_id = identity.current_org_id()
      AND projects.in_organization()
$$;

-- The projects of the current organization the current user may see.
CREATE FUNCTION projects.visible_projects() RETURNS SETOF uuid
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, projects, pg_temp
AS $$
    SELECT p.id FROM projects.projects p
    WHERE p.organization_id = identity.current_org_id() AND p.owner_id = identity.current_user_id()
      AND projects.in_organization()
    UNION
    SELECT m.project_id FROM projects.project_members m
    WHERE m.organization_id = identity.current_org_id() AND m.user_id = identity.current_user_id()
      AND projects.in_organization()
$$;

-- Refuses a write the current user may not make to a project: WP003 when not a
-- member, WP002 when a viewer, when only owners and admins may (p_manage), or when
-- the project is archived (unless p_restoring: an owner or admin bringing it back).
CREATE FUNCTION projects.require_write(p_project_id uuid, p_manage boolean, p_restoring boolean DEFAULT false)
RETURNS void
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, projects, pg_temp
AS $$
DECLARE
    role projects.project_role := projects.member_role(p_project_id);
    archived boolean;
BEGIN
    IF role IS NULL THEN
        RAISE EXCEPTION 'not a member of project %', p_project_id USING ERRCODE = 'WP003';
    ELSIF role = 'viewer' OR (p_manage AND role = 'member') THEN
        RAISE EXCEPTION 'project % is read-only for its %s', p_project_id, role USING ERRCODE = 'WP002';
    END IF;
    SELECT p.status = 'archived' INTO archived FROM projects.projects p
    WHERE p.organization_id = identity.current_org_id() AND p.id = p_project_id;
    IF archived AND NOT p_restoring THEN
        RAISE EXCEPTION 'project % is archived: restore it to change it', p_project_id
            USING ERRCODE = 'WP002';
    END IF;
END
$$;

-- Whether this write is the database's own (a cascade, a definer function), which
-- has been authorised where it started.
CREATE FUNCTION projects.internal_write() RETURNS boolean
LANGUAGE sql STABLE
AS $$ SELECT pg_has_role(current_user, 'groundwork_owner', 'USAGE') $$;

-- The write rules of everything inside a project: members write, viewers read, and
-- owners and admins manage members.
CREATE FUNCTION projects.check_project_write() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, projects, pg_temp
AS $$
DECLARE
    row_project uuid := CASE WHEN TG_OP = 'DELETE' THEN OLD.project_id ELSE NEW.project_id END;
    manage boolean := TG_TABLE_NAME = 'project_members';
BEGIN
    IF manage AND TG_OP = 'DELETE' THEN
        -- A member may leave.
        manage := OLD.user_id IS DISTINCT FROM identity.current_user_id();
    END IF;
    IF projects.internal_write() THEN
        RETURN CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END;
    END IF;
    IF TG_OP = 'UPDATE' AND NEW.project_id IS DISTINCT FROM OLD.project_id THEN
        RAISE EXCEPTION 'a row cannot move to another project' USING ERRCODE = 'WP002';
    END IF;
    PERFORM projects.require_write(row_project, manage);
    RETURN CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END;
END
$$;

CREATE TRIGGER project_members_authorize BEFORE INSERT OR UPDATE OR DELETE ON projects.project_members
    FOR EACH ROW EXECUTE FUNCTION projects.check_project_write();
CREATE TRIGGER tasks_authorize BEFORE INSERT OR UPDATE OR DELETE ON projects.tasks
    FOR EACH ROW EXECUTE FUNCTION projects.check_project_write();
CREATE TRIGGER task_dependencies_authorize BEFORE INSERT OR UPDATE OR DELETE ON projects.task_dependencies
    FOR EACH ROW EXECUTE FUNCTION projects.check_project_write();
CREATE TRIGGER documents_authorize BEFORE INSERT OR UPDATE OR DELETE ON projects.documents
    FOR EACH ROW EXECUTE FUNCTION projects.check_project_write();
CREATE TRIGGER file_attachments_authorize BEFORE INSERT OR UPDATE OR DELETE ON projects.file_attachments
    FOR EACH ROW EXECUTE FUNCTION projects.check_project_write();

-- Projects: anyone in the organization creates one, as its owner; owners and admins
-- change it (an archived one only to restore it); only the owner deletes it.
CREATE FUNCTION projects.check_project() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, projects, pg_temp
AS $$
BEGIN
    IF TG_OP = 'UPDATE' THEN
        -- The archive stamp follows the status.
        NEW.archived_at := CASE WHEN NEW.status = 'archived' THEN coalesce(OLD.archived_at, now()) END;
    ELSIF TG_OP = 'INSERT' THEN
        NEW.archived_at := CASE WHEN NEW.status = 'archived' THEN now() END;
    END IF;
    IF projects.internal_write() THEN
        RETURN CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END;
    END IF;
    IF TG_OP = 'INSERT' THEN
        IF NEW.owner_id IS DISTINCT FROM identity.current_user_id() THEN
            RAISE EXCEPTION 'a project is created by its owner: owner_id must be the current user'
                USING ERRCODE = 'insufficient_privilege';
        END IF;
        IF NOT EXISTS (SELECT FROM identity.organization_members m
                       WHERE m.organization_id = NEW.organization_id
                         AND m.user_id = NEW.owner_id AND m.status = 'active') THEN
            RAISE EXCEPTION 'the owner of a project must be an active member of its organization'
                USING ERRCODE = 'WP003';
        END IF;
        RETURN NEW;
    ELSIF TG_OP = 'DELETE' THEN
        IF projects.member_role(OLD.id) IS DISTINCT FROM 'owner' THEN
            RAISE EXCEPTION 'only the owner deletes project %', OLD.id USING ERRCODE = 'WP002';
        END IF;
        RETURN OLD;
    END IF;
    PERFORM projects.require_write(OLD.id, true,
                                   OLD.status = 'archived' AND NEW.status <> 'archived');
    IF NEW.owner_id IS DISTINCT FROM OLD.owner_id
       AND projects.member_role(OLD.id) IS DISTINCT FROM 'owner' THEN
        RAISE EXCEPTION 'only the owner hands project % over', OLD.id USING ERRCODE = 'WP002';
    END IF;
    RETURN NEW;
END
$$;

CREATE TRIGGER projects_check BEFORE INSERT OR UPDATE OR DELETE ON projects.projects
    FOR EACH ROW EXECUTE FUNCTION projects.check_project();

-- Members are active members of the organization.
CREATE FUNCTION projects.check_member() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, projects, pg_temp
AS $$
BEGIN
    IF NOT EXISTS (SELECT FROM identity.organization_members m
                   WHERE m.organization_id = NEW.organization_id
                     AND m.user_id = NEW.user_id AND m.status = 'active') THEN
        RAISE EXCEPTION 'user % is not an active member of the organization', NEW.user_id
            USING ERRCODE = 'WP003';
    END IF;
    RETURN NEW;
END
$$;

CREATE TRIGGER project_members_check_member BEFORE INSERT OR UPDATE OF user_id ON projects.project_members
    FOR EACH ROW EXECUTE FUNCTION projects.check_member();

-- Every project has its guard row.
CREATE FUNCTION projects.create_graph_guard() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, projects, pg_temp
AS $$
BEGIN
    INSERT INTO projects.graph_guards (organization_id, project_id) VALUES (NEW.organization_id, NEW.id);
    RETURN NULL;
END
$$;

CREATE TRIGGER projects_create_graph_guard AFTER INSERT ON projects.projects
    FOR EACH ROW EXECUTE FUNCTION projects.create_graph_guard();

-- Waits for the project's other task-graph changes to end. A real update, so that a
-- REPEATABLE READ or SERIALIZABLE transaction racing another fails with 40001 instead
-- of deciding on an old snapshot.
CREATE FUNCTION projects.guard_graph(p_organization_id uuid, p_project_id uuid) RETURNS void
LANGUAGE sql SECURITY DEFINER
SET search_path = pg_catalog, projects, pg_temp
AS $$
    UPDATE projects.graph_guards SET changes = changes + 1
    WHERE organization_id = p_organization_id AND project_id = p_project_id
$$;

-- No parent cycles: the new parent may not be the task or one of its descendants.
CREATE FUNCTION projects.check_task_parent() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, projects, pg_temp
AS $$
BEGIN
    -- Being one's own parent is the CHECK tasks_not_own_parent's to report.
    IF NEW.parent_task_id IS NULL OR NEW.parent_task_id = NEW.id THEN
        RETURN NEW;
    END IF;
    PERFORM projects.guard_graph(NEW.organization_id, NEW.project_id);
    IF EXISTS (
        WITH RECURSIVE ancestors(id) AS (
            SELECT NEW.parent_task_id
            UNION
            SELECT t.parent_task_id FROM projects.tasks t JOIN ancestors a ON t.id = a.id
            WHERE t.organization_id = NEW.organization_id AND t.parent_task_id IS NOT NULL
        )
        SELECT FROM ancestors WHERE id = NEW.id) THEN
        RAISE EXCEPTION 'task % cannot be under task %: that would make a cycle of parents',
            NEW.id, NEW.parent_task_id USING ERRCODE = 'WP001';
    END IF;
    RETURN NEW;
END
$$;

CREATE TRIGGER tasks_check_parent BEFORE INSERT OR UPDATE OF parent_task_id ON projects.tasks
    FOR EACH ROW EXECUTE FUNCTION projects.check_task_parent();

-- Done means every blocker is done or cancelled; done stamps completed_at.
CREATE FUNCTION projects.check_task_status() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, projects, pg_temp
AS $$
DECLARE
    open_blockers uuid[];
BEGIN
    IF NEW.status = 'done' AND (TG_OP = 'INSERT' OR OLD.status <> 'done') THEN
        PERFORM projects.guard_graph(NEW.organization_id, NEW.project_id);
        SELECT array_agg(d.depends_on_task_id ORDER BY d.depends_on_task_id) INTO open_blockers
        FROM projects.task_dependencies d
        JOIN projects.tasks b ON b.organization_id = d.organization_id AND b.id = d.depends_on_task_id
        WHERE d.organization_id = NEW.organization_id AND d.task_id = NEW.id
          AND d.dependency_type = 'blocks'
          AND b.status NOT IN ('done', 'cancelled');
        IF open_blockers IS NOT NULL THEN
            RAISE EXCEPTION 'task % is blocked by % task(s) not yet done', NEW.id, cardinality(open_blockers)
                USING ERRCODE = 'WP004', DETAIL = jsonb_build_object('blockers', open_blockers)::text;
        END IF;
        NEW.completed_at := now();
    ELSIF NEW.status <> 'done' THEN
        NEW.completed_at := NULL;
    END IF;
    RETURN NEW;
END
$$;

CREATE TRIGGER tasks_check_status BEFORE INSERT OR UPDATE OF status ON projects.tasks
    FOR EACH ROW EXECUTE FUNCTION projects.check_task_status();

-- Dependencies belong to their task's project (triggers fire in name order: this
-- one, then authorize, then check_cycle).
CREATE FUNCTION projects.assign_dependency_project() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, projects, pg_temp
AS $$
BEGIN
    IF NEW.project_id IS NULL THEN
        SELECT t.project_id INTO NEW.project_id FROM projects.tasks t
        WHERE t.id = NEW.task_id AND t.organization_id = NEW.organization_id;
    END IF;
    RETURN NEW;
END
$$;

CREATE TRIGGER task_dependencies_assign_project BEFORE INSERT ON projects.task_dependencies
    FOR EACH ROW EXECUTE FUNCTION projects.assign_dependency_project();

-- No dependency cycles of any length.
CREATE FUNCTION projects.check_dependency() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, projects, pg_temp
AS $$
BEGIN
    -- The foreign keys report a missing task, the CHECK a self-dependency.
    IF NEW.project_id IS NULL OR NEW.task_id = NEW.depends_on_task_id THEN
        RETURN NEW;
    END IF;
    PERFORM projects.guard_graph(NEW.organization_id, NEW.project_id);
    IF EXISTS (
        WITH RECURSIVE reachable(id) AS (
            SELECT NEW.depends_on_task_id
            UNION
            SELECT d.depends_on_task_id FROM projects.task_dependencies d
            JOIN reachable r ON d.organization_id = NEW.organization_id AND d.task_id = r.id
        )
        SELECT FROM reachable WHERE id = NEW.task_id) THEN
        RAISE EXCEPTION 'task % cannot depend on task %: that would make a cycle of dependencies',
            NEW.task_id, NEW.depends_on_task_id USING ERRCODE = 'WP001';
    END IF;
    RETURN NEW;
END
$$;

CREATE TRIGGER task_dependencies_check_cycle BEFORE INSERT OR UPDATE OF task_id, depends_on_task_id
    ON projects.task_dependencies
    FOR EACH ROW EXECUTE FUNCTION projects.check_dependency();

-- Documents: an edit of the content is the next version; publishing stamps
-- published_at.
CREATE FUNCTION projects.version_document() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, projects, pg_temp
AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        NEW.version := 1;
    ELSIF NEW.content IS DISTINCT FROM OLD.content THEN
        NEW.version := OLD.version + 1;
    ELSE
        NEW.version := OLD.version;
        NEW.change_summary := OLD.change_summary;
    END IF;
    IF NEW.status = 'published' AND (TG_OP = 'INSERT' OR OLD.status <> 'published') THEN
        NEW.published_at := now();
    END IF;
    RETURN NEW;
END
$$;

CREATE TRIGGER documents_version BEFORE INSERT OR UPDATE ON projects.documents
    FOR EACH ROW EXECUTE FUNCTION projects.version_document();

CREATE FUNCTION projects.record_document_version() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, projects, pg_temp
AS $$
BEGIN
    IF TG_OP = 'INSERT' OR NEW.version <> OLD.version THEN
        INSERT INTO projects.document_versions
            (organization_id, project_id, document_id, version_number, content, change_summary, author_id)
        VALUES (NEW.organization_id, NEW.project_id, NEW.id, NEW.version, NEW.content,
                NEW.change_summary, coalesce(identity.current_user_id(), NEW.author_id));
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER documents_record_version AFTER INSERT OR UPDATE ON projects.documents
    FOR EACH ROW EXECUTE FUNCTION projects.record_document_version();

-- Marks a task done (see check_task_status); returns it.
CREATE FUNCTION projects.complete_task(p_task_id uuid) RETURNS SETOF projects.tasks
LANGUAGE sql
AS $$
    UPDATE projects.tasks SET status = 'done'
    WHERE organization_id = identity.current_org_id() AND id = p_task_id
    RETURNING *
$$;

-- Row-level security: the tenant, and the projects the current user may see.
ALTER TABLE projects.project_members ENABLE ROW LEVEL SECURITY;
CREATE POLICY project_members_member ON projects.project_members
    FOR ALL TO groundwork_app, groundwork_readonly
    USING (organization_id = identity.current_org_id()
           AND project_id IN (SELECT projects.visible_projects()))
    WITH CHECK (organization_id = identity.current_org_id()
                AND project_id IN (SELECT projects.visible_projects()));

ALTER TABLE projects.tasks ENABLE ROW LEVEL SECURITY;
CREATE POLICY tasks_member ON projects.tasks
    FOR ALL TO groundwork_app, groundwork_readonly
    USING (organization_id = identity.current_org_id()
           AND project_id IN (SELECT projects.visible_projects()))
    WITH CHECK (organization_id = identity.current_org_id()
                AND project_id IN (SELECT projects.visible_projects()));

ALTER TABLE projects.task_dependencies ENABLE ROW LEVEL SECURITY;
CREATE POLICY task_dependencies_member ON projects.task_dependencies
    FOR ALL TO groundwork_app, groundwork_readonly
    USING (organization_id = identity.current_org_id()
           AND project_id IN (SELECT projects.visible_projects()))
    WITH CHECK (organization_id = identity.current_org_id()
                AND project_id IN (SELECT projects.visible_projects()));

ALTER TABLE projects.documents ENABLE ROW LEVEL SECURITY;
CREATE POLICY documents_member ON projects.documents
    FOR ALL TO groundwork_app, groundwork_readonly
    USING (organization_id = identity.current_org_id()
           AND project_id IN (SELECT projects.visible_projects()))
    WITH CHECK (organization_id = identity.current_org_id()
                AND project_id IN (SELECT projects.visible_projects()));

ALTER TABLE projects.document_versions ENABLE ROW LEVEL SECURITY;
CREATE POLICY document_versions_member ON projects.document_versions
    FOR ALL TO groundwork_app, groundwork_readonly
    USING (organization_id = identity.current_org_id()
           AND project_id IN (SELECT projects.visible_projects()))
    WITH CHECK (organization_id = identity.current_org_id()
                AND project_id IN (SELECT projects.visible_projects()));

ALTER TABLE projects.file_attachments ENABLE ROW LEVEL SECURITY;
CREATE POLICY file_attachments_member ON projects.file_attachments
    FOR ALL TO groundwork_app, groundwork_readonly
    USING (organization_id = identity.current_org_id()
           AND project_id IN (SELECT projects.visible_projects()))
    WITH CHECK (organization_id = identity.current_org_id()
                AND project_id IN (SELECT projects.visible_projects()));

ALTER TABLE projects.graph_guards ENABLE ROW LEVEL SECURITY;
CREATE POLICY graph_guards_member ON projects.graph_guards
    FOR ALL TO groundwork_app, groundwork_readonly
    USING (organization_id = identity.current_org_id()
           AND project_id IN (SELECT projects.visible_projects()))
    WITH CHECK (organization_id = identity.current_org_id()
                AND project_id IN (SELECT projects.visible_projects()));

ALTER TABLE projects.projects ENABLE ROW LEVEL SECURITY;
-- The owner is recognised by the row itself, so that a project being created (not
-- yet seen by visible_projects()) passes for RETURNING.
CREATE POLICY projects_member ON projects.projects
    FOR ALL TO groundwork_app, groundwork_readonly
    USING (organization_id = identity.current_org_id()
           AND ((owner_id = identity.current_user_id() AND projects.in_organization())
                OR id IN (SELECT projects.visible_projects())))
    WITH CHECK (organization_id = identity.current_org_id()
                AND ((owner_id = identity.current_user_id() AND projects.in_organization())
                     OR id IN (SELECT projects.visible_projects())));

SELECT public.groundwork_set_owner('projects', 'groundwork_owner');

GRANT USAGE ON SCHEMA projects TO groundwork_app, groundwork_readonly;
GRANT SELECT ON projects.projects, projects.project_members, projects.tasks,
    projects.task_dependencies, projects.documents, projects.document_versions,
    projects.file_attachments
    TO groundwork_app, groundwork_readonly;
GRANT INSERT (id, name, description, owner_id, status, visibility, settings),
      UPDATE (name, description, owner_id, status, visibility, settings),
      DELETE
    ON projects.projects TO groundwork_app;
GRANT INSERT (id, project_id, user_id, role, permissions),
      UPDATE (role, permissions),
      DELETE
    ON projects.project_members TO groundwork_app;
GRANT INSERT (id, project_id, parent_task_id, title, description, status, priority, assignee_id,
              due_date, estimated_hours, actual_hours, tags, metadata),
      UPDATE (parent_task_id, title, description, status, priority, assignee_id, due_date,
              estimated_hours, actual_hours, tags, metadata),
      DELETE
    ON projects.tasks TO groundwork_app;
GRANT INSERT (id, project_id, task_id, depends_on_task_id, dependency_type),
      UPDATE (dependency_type),
      DELETE
    ON projects.task_dependencies TO groundwork_app;
GRANT INSERT (id, project_id, title, content, content_type, change_summary, status, tags, metadata),
      UPDATE (title, content, content_type, change_summary, status, tags, metadata),
      DELETE
    ON projects.documents TO groundwork_app;
GRANT INSERT (id, project_id, entity_type, entity_id, filename, original_filename, file_size,
              mime_type, storage_path, metadata),
      DELETE
    ON projects.file_attachments TO groundwork_app;

-- Functions: the definer ones are for the triggers and policies (and member_role,
-- visible_projects and complete_task for the application); none for PUBLIC.
REVOKE ALL ON FUNCTION projects.in_organization(), projects.member_role(uuid),
    projects.visible_projects(), projects.assign_dependency_project(),
    projects.require_write(uuid, boolean, boolean), projects.create_graph_guard(),
    projects.guard_graph(uuid, uuid), projects.check_task_parent(), projects.check_task_status(),
    projects.check_dependency(), projects.record_document_version()
    FROM PUBLIC;
GRANT EXECUTE ON FUNCTION projects.in_organization(), projects.member_role(uuid),
    projects.visible_projects(), projects.require_write(uuid, boolean, boolean)
    TO groundwork_app, groundwork_readonly;
