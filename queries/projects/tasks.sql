--: Task(parent_task_id?, description?, assignee_id?, due_date?, estimated_hours?, actual_hours?, completed_at?)

--! task_create (parent_task_id?, description?, assignee_id?, due_date?, estimated_hours?) : Task
INSERT INTO projects.tasks (project_id, parent_task_id, title, description, priority, assignee_id,
                            due_date, estimated_hours, tags, metadata)
VALUES (:project_id, :parent_task_id, :title, :description, :priority, :assignee_id, :due_date,
        :estimated_hours, :tags, :metadata)
RETURNING id, organization_id, project_id, parent_task_id, title, description, status, priority,
          assignee_id, creator_id, due_date, estimated_hours, actual_hours, tags, metadata,
          created_at, updated_at, completed_at;

--! task_get : Task
SELECT id, organization_id, project_id, parent_task_id, title, description, status, priority,
       assignee_id, creator_id, due_date, estimated_hours, actual_hours, tags, metadata,
       created_at, updated_at, completed_at
FROM projects.tasks
WHERE organization_id = identity.current_org_id() AND id = :id;

--- Null arguments keep the current value. Setting status 'done' is refused while a
--- blocker is open (SQLSTATE WP004); see task_complete.
--! task_update (title?, description?, status?, priority?, assignee_id?, due_date?, estimated_hours?, actual_hours?) : Task
UPDATE projects.tasks
SET title = COALESCE(:title, title),
    description = COALESCE(:description, description),
    status = COALESCE(:status, status),
    priority = COALESCE(:priority, priority),
    assignee_id = COALESCE(:assignee_id, assignee_id),
    due_date = COALESCE(:due_date, due_date),
    estimated_hours = COALESCE(:estimated_hours, estimated_hours),
    actual_hours = COALESCE(:actual_hours, actual_hours)
WHERE organization_id = identity.current_org_id() AND id = :id
RETURNING id, organization_id, project_id, parent_task_id, title, description, status, priority,
          assignee_id, creator_id, due_date, estimated_hours, actual_hours, tags, metadata,
          created_at, updated_at, completed_at;

--- Moves the task under another of the project's tasks (null: to the top). A cycle of
--- parents is refused (SQLSTATE WP001).
--! task_set_parent (parent_task_id?) : Task
UPDATE projects.tasks SET parent_task_id = :parent_task_id
WHERE organization_id = identity.current_org_id() AND id = :id
RETURNING id, organization_id, project_id, parent_task_id, title, description, status, priority,
          assignee_id, creator_id, due_date, estimated_hours, actual_hours, tags, metadata,
          created_at, updated_at, completed_at;

--- Done, with completed_at (projects.complete_task); refused while a task it
--- depends on with type 'blocks' is neither done nor cancelled (SQLSTATE WP004).
--! task_complete : Task
SELECT id, organization_id, project_id, parent_task_id, title, description, status, priority,
       assignee_id, creator_id, due_date, estimated_hours, actual_hours, tags, metadata,
       created_at, updated_at, completed_at
FROM projects.complete_task(:id);

--! task_delete
DELETE FROM projects.tasks WHERE organization_id = identity.current_org_id() AND id = :id;

--- The board: a project's tasks, optionally of one status, by priority (urgent first)
--- then id. Keyset pagination: pass the last row's priority and id, or nulls.
--! task_board (status?, after_priority?, after_id?) : Task
SELECT id, organization_id, project_id, parent_task_id, title, description, status, priority,
       assignee_id, creator_id, due_date, estimated_hours, actual_hours, tags, metadata,
       created_at, updated_at, completed_at
FROM projects.tasks
WHERE organization_id = identity.current_org_id() AND project_id = :project_id
  AND (:status::projects.task_status IS NULL OR status = :status)
  AND (:after_id::uuid IS NULL
       OR (priority, id) < (:after_priority::projects.task_priority, :after_id::uuid))
ORDER BY priority DESC, id DESC
LIMIT :limit;

--- Tasks that can start: pending or blocked, and every task they depend on with type
--- 'blocks' is done or cancelled. Keyset pagination by id. The OFFSET 0 keeps the
--- blocker check a per-task probe of the dependency index: as an anti-join PostgreSQL
--- would read every dependency of the project for one page.
--! task_list_ready (after_id?) : Task
SELECT t.id, t.organization_id, t.project_id, t.parent_task_id, t.title, t.description, t.status,
       t.priority, t.assignee_id, t.creator_id, t.due_date, t.estimated_hours, t.actual_hours,
       t.tags, t.metadata, t.created_at, t.updated_at, t.completed_at
FROM projects.tasks t
WHERE t.organization_id = identity.current_org_id() AND t.project_id = :project_id
  AND t.status IN ('pending', 'blocked')
  AND (:after_id::uuid IS NULL OR t.id > :after_id)
  AND NOT EXISTS (
      SELECT FROM projects.task_dependencies d
      JOIN projects.tasks b ON b.organization_id = d.organization_id AND b.id = d.depends_on_task_id
      WHERE d.organization_id = t.organization_id AND d.task_id = t.id AND d.dependency_type = 'blocks'
        AND b.status NOT IN ('done', 'cancelled')
      OFFSET 0)
ORDER BY t.id
LIMIT :limit;

--- Every task the task waits for through 'blocks' dependencies, at any depth up to
--- max_depth, with the shortest depth at which each is reached.
--! task_blockers
WITH RECURSIVE reach(task_id, depth) AS (
    SELECT d.depends_on_task_id, 1
    FROM projects.task_dependencies d
    WHERE d.organization_id = identity.current_org_id() AND d.task_id = :task_id
      AND d.dependency_type = 'blocks'
    UNION
    SELECT d.depends_on_task_id, r.depth + 1
    FROM reach r
    JOIN projects.task_dependencies d
      ON d.organization_id = identity.current_org_id() AND d.task_id = r.task_id
     AND d.dependency_type = 'blocks'
    WHERE r.depth < :max_depth
)
SELECT t.id, t.title, t.status, min(r.depth) AS depth
FROM reach r
JOIN projects.tasks t ON t.organization_id = identity.current_org_id() AND t.id = r.task_id
GROUP BY t.id, t.title, t.status
ORDER BY depth, t.id;

--- Every task waiting for the task through 'blocks' dependencies, at any depth up to
--- max_depth, with the shortest depth.
--! task_dependents
WITH RECURSIVE reach(task_id, depth) AS (
    SELECT d.task_id, 1
    FROM projects.task_dependencies d
    WHERE d.organization_id = identity.current_org_id() AND d.depends_on_task_id = :task_id
      AND d.dependency_type = 'blocks'
    UNION
    SELECT d.task_id, r.depth + 1
    FROM reach r
    JOIN projects.task_dependencies d
      ON d.organization_id = identity.current_org_id() AND d.depends_on_task_id = r.task_id
     AND d.dependency_type = 'blocks'
    WHERE r.depth < :max_depth
)
SELECT t.id, t.title, t.status, min(r.depth) AS depth
FROM reach r
JOIN projects.tasks t ON t.organization_id = identity.current_org_id() AND t.id = r.task_id
GROUP BY t.id, t.title, t.status
ORDER BY depth, t.id;

--- The current user's open tasks (not done or cancelled) in every project they can see,
--- by due date (undated last) then id. Keyset pagination: pass the last row's id.
--! task_list_open_for_me (after_id?) : Task
SELECT id, organization_id, project_id, parent_task_id, title, description, status, priority,
       assignee_id, creator_id, due_date, estimated_hours, actual_hours, tags, metadata,
       created_at, updated_at, completed_at
FROM projects.tasks
WHERE organization_id = identity.current_org_id() AND assignee_id = identity.current_user_id()
  AND status NOT IN ('done', 'cancelled')
  AND (:after_id::uuid IS NULL OR id > :after_id)
ORDER BY id
LIMIT :limit;
