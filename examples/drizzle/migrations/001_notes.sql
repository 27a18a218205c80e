create table notes (id serial primary key, body text not null, created_at timestamptz not null default now());
