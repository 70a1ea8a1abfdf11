/** The admin page's one stylesheet, served by us at /admin/assets/admin.css (the CSP allows no other). */
export const ADMIN_CSS = `
:root { color-scheme: light; --fg: #1d2430; --muted: #5b6575; --line: #d6dbe3; --bg: #f6f7f9; --accent: #2456a6;
  --ok: #1f7a3d; --bad: #b42318; --warn: #9a6700; --idle: #5b6575; }
* { box-sizing: border-box; }
body { margin: 0; font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--fg); background: var(--bg); }
header.top { display: flex; align-items: center; gap: 1.5rem; padding: .6rem 1.5rem; background: #fff; border-bottom: 1px solid var(--line); }
header.top .brand { font-weight: 700; color: var(--fg); text-decoration: none; }
header.top nav { flex: 1; display: flex; gap: 1rem; }
header.top form { margin: 0; }
main { max-width: 1200px; margin: 0 auto; padding: 1.25rem 1.5rem 3rem; }
h1 { font-size: 1.4rem; margin: .2rem 0 1rem; }
h2 { font-size: 1.1rem; margin: 1.8rem 0 .6rem; }
a { color: var(--accent); }
table { border-collapse: collapse; width: 100%; background: #fff; border: 1px solid var(--line); }
th, td { text-align: left; padding: .4rem .6rem; border-bottom: 1px solid var(--line); vertical-align: top; }
th { background: #eef1f5; font-weight: 600; font-size: .85rem; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
table.facts th { width: 12rem; }
.error-text { color: var(--bad); max-width: 40rem; overflow-wrap: anywhere; }
pre { background: #fff; border: 1px solid var(--line); padding: .6rem .8rem; overflow: auto; max-height: 28rem; font-size: .82rem; margin: .3rem 0 .8rem; }
.badge { display: inline-block; padding: .05rem .5rem; border-radius: 1rem; font-size: .8rem; font-weight: 600; color: #fff; }
.badge-synced { background: var(--ok); } .badge-failed { background: var(--bad); }
.badge-pending { background: var(--warn); } .badge-discarded, .badge-ignored { background: var(--idle); }
.banner { padding: .7rem 1rem; border-radius: .3rem; margin: 0 0 1rem; border: 1px solid; }
.banner.ok { background: #e8f5ec; border-color: #9fd3ae; } .banner.bad { background: #fdecea; border-color: #f1a9a0; }
.banner.info { background: #eef3fb; border-color: #b7c9e8; }
form.filters { display: flex; flex-wrap: wrap; gap: .6rem; align-items: flex-end; background: #fff; border: 1px solid var(--line); padding: .8rem; margin-bottom: 1rem; }
form.filters label { display: flex; flex-direction: column; font-size: .8rem; color: var(--muted); gap: .2rem; }
input, select, button { font: inherit; padding: .3rem .5rem; border: 1px solid #b8c0cc; border-radius: .25rem; background: #fff; }
button { cursor: pointer; background: var(--accent); color: #fff; border-color: var(--accent); }
button.secondary { background: #fff; color: var(--accent); }
button.danger { background: var(--bad); border-color: var(--bad); }
.actions { display: flex; gap: .6rem; flex-wrap: wrap; margin: 1rem 0; }
.actions form { margin: 0; }
.muted { color: var(--muted); }
.login { max-width: 26rem; margin: 4rem auto; background: #fff; border: 1px solid var(--line); padding: 1.5rem; }
.login label { display: block; margin-bottom: .8rem; }
.login input { width: 100%; margin-top: .3rem; }
details { margin: .3rem 0; }
.event { background: #fff; border: 1px solid var(--line); padding: .6rem .8rem; margin-bottom: .8rem; }
.event h3 { font-size: .95rem; margin: 0 0 .4rem; }
`;
