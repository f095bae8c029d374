-- expect: ban-drop-database statement-failed
DROP DATABASE IF EXISTS reports;
