--: TaskDependency()

--- The dependency belongs to the task's project; both tasks must be in it. A cycle of
--- any length is refused (SQLSTATE WP001).
--! task_dependency_add : TaskDependency
INSERT INTO projects.task_dependencies (task_id, depends_on_task_id, dependency_type)
VALUES (:task_id, :depends_on_task_id, :dependency_type)
RETURNING id, organization_id, project_id, task_id, depends_on_task_id, dependency_type, created_at;

--! task_dependency_list_by_task : TaskDependency
SELECT id, organization_id, project_id, task_id, depends_on_task_id, dependency_type, created_at
FROM projects.task_dependencies
WHERE organization_id = identity.current_org_id() AND task_id = :task_id
ORDER BY created_at, id;

--! task_dependency_remove
DELETE FROM projects.task_dependencies
WHERE organization_id = identity.current_org_id() AND task_id = :task_id AND depends_on_task_id = :depends_on_task_id;
