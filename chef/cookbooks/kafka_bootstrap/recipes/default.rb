#
# Cookbook:: kafka_bootstrap
# Recipe:: default
#
# Installs kafka-bootstrap, writes /etc/kafka-bootstrap/config.json from attributes, creates
# the kafka user with fixed ids and enables the units. It never starts, stops or restarts a
# unit: restarting kafka-bootstrap.service restarts kafka.service and bounces the broker, and
# a changed configuration is read at the next boot or by an operator's `kafka-bootstrap run`.

settings = node['kafka_bootstrap']

group settings['kafka_group'] do
  gid settings['kafka_gid']
  system true
end

user settings['kafka_user'] do
  uid settings['kafka_uid']
  gid settings['kafka_gid']
  home settings['kafka_home']
  manage_home false
  shell '/usr/sbin/nologin'
  system true
end

if settings['package_file']
  dpkg_package settings['package_name'] do
    source settings['package_file']
    notifies :run, 'execute[systemctl daemon-reload]', :immediately
  end
else
  package settings['package_name'] do
    version settings['package_version'] if settings['package_version']
    notifies :run, 'execute[systemctl daemon-reload]', :immediately
  end
end

# The package's units and kafka.service drop-in, seen before they are enabled.
execute 'systemctl daemon-reload' do
  action :nothing
end

directory '/etc/kafka-bootstrap' do
  owner 'root'
  group 'root'
  mode '0755'
end

directory '/etc/kafka-bootstrap/config.d' do
  owner 'root'
  group 'root'
  mode '0755'
end

file '/etc/kafka-bootstrap/config.json' do
  content "#{JSON.pretty_generate(settings['config'].to_hash)}\n"
  owner 'root'
  group 'root'
  mode '0644'
  # The tool itself refuses an unknown key or a bad value before the file is replaced; %{path}
  # is Chef's placeholder for the staged file, not a format string.
  verify '/usr/bin/kafka-bootstrap config --config %{path}' # rubocop:disable Style/FormatStringToken
end

settings['units'].each do |unit|
  systemd_unit unit do
    action :enable
  end
end
