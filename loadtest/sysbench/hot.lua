-- otter loadtest workload `hot`: many updates to few rows, where merging pays.
--   prepare: creates hot1 with --table-size rows (default 100)
--   run:     each event is one transaction of --updates UPDATEs, each to a random row
--            (counter + 1, a new note), so most rows change many times per second.
--            The rows are taken in key order, so threads wait for each other rather
--            than deadlock (a deadlock would be retried by sysbench anyway).
sysbench.cmdline.options = {
  table_size = {"Rows created by prepare", 100},
  updates = {"UPDATEs per transaction", 10},
}

function cmd_prepare()
  local con = sysbench.sql.driver():connect()
  con:query([[CREATE TABLE hot1 (
    id INT NOT NULL PRIMARY KEY,
    counter BIGINT NOT NULL DEFAULT 0,
    note VARCHAR(64) NOT NULL DEFAULT '',
    updated_at TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6)) ENGINE=InnoDB]])
  for i = 1, sysbench.opt.table_size do
    con:query(string.format("INSERT INTO hot1 (id) VALUES (%d)", i))
  end
end

sysbench.cmdline.commands = { prepare = {cmd_prepare} }

function thread_init()
  con = sysbench.sql.driver():connect()
end

function event()
  local ids = {}
  for i = 1, sysbench.opt.updates do
    ids[i] = sysbench.rand.default(1, sysbench.opt.table_size)
  end
  table.sort(ids)
  con:query("BEGIN")
  for _, id in ipairs(ids) do
    con:query(string.format(
      "UPDATE hot1 SET counter = counter + 1, note = '%s', updated_at = NOW(6) WHERE id = %d",
      sysbench.rand.string("note-##########"), id))
  end
  con:query("COMMIT")
end

function thread_done()
  con:disconnect()
end
