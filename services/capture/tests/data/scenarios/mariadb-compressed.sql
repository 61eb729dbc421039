-- MariaDB compressed binlog events (log_bin_compress): query and rows events.
CREATE DATABASE IF NOT EXISTS fixture_cz;
CREATE OR REPLACE TABLE fixture_cz.t (id INT PRIMARY KEY, s TEXT, d DECIMAL(10,3), y YEAR, u INT UNSIGNED);
INSERT INTO fixture_cz.t VALUES (1, REPEAT('abc', 100), -12.5, 2024, 4294967295), (2, 'short', NULL, 0, 7);
UPDATE fixture_cz.t SET s = REPEAT('x', 50), id = 3 WHERE id = 1;
DELETE FROM fixture_cz.t WHERE id = 2;
DROP DATABASE fixture_cz;
