-- otter loadtest workload `wide`: rows of 2-50 KB (MEDIUMTEXT + MEDIUMBLOB).
--   prepare: creates wide1 with --table-size rows
--   run:     each event is one transaction: an UPDATE of a random row's document and
--            blob to a new random size, and every --insert-every'th event also an INSERT
--            of a new row. Payloads are random letters (lz4 cannot shrink them away).
sysbench.cmdline.options = {
  table_size = {"Rows created by prepare", 1000},
  min_bytes = {"Smallest row payload", 2048},
  max_bytes = {"Largest row payload", 51200},
  insert_every = {"One INSERT every N events (0 = none)", 4},
}

local function payload(n)
  return sysbench.rand.string(string.rep("@", n))
end

local function row_values()
  local n = sysbench.rand.uniform(sysbench.opt.min_bytes, sysbench.opt.max_bytes)
  local doc = math.floor(n / 2)
  return payload(doc), payload(n - doc)
end

function cmd_prepare()
  local con = sysbench.sql.driver():connect()
  con:query([[CREATE TABLE wide1 (
    id INT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    k INT NOT NULL,
    doc MEDIUMTEXT NOT NULL,
    img MEDIUMBLOB NOT NULL,
    KEY k (k)) ENGINE=InnoDB]])
  for i = 1, sysbench.opt.table_size do
    local doc, img = row_values()
    con:query(string.format("INSERT INTO wide1 (k, doc, img) VALUES (%d, '%s', '%s')",
      sysbench.rand.default(1, sysbench.opt.table_size), doc, img))
  end
end

sysbench.cmdline.commands = { prepare = {cmd_prepare} }

function thread_init()
  con = sysbench.sql.driver():connect()
  events = 0
end

function event()
  events = events + 1
  local doc, img = row_values()
  con:query("BEGIN")
  con:query(string.format("UPDATE wide1 SET doc = '%s', img = '%s', k = k + 1 WHERE id = %d",
    doc, img, sysbench.rand.default(1, sysbench.opt.table_size)))
  if sysbench.opt.insert_every > 0 and events % sysbench.opt.insert_every == 0 then
    doc, img = row_values()
    con:query(string.format("INSERT INTO wide1 (k, doc, img) VALUES (%d, '%s', '%s')",
      events, doc, img))
  end
  con:query("COMMIT")
end

function thread_done()
  con:disconnect()
end
