# chef_harness.rb COOKBOOK_DIR [OVERRIDES_JSON]: evaluates a cookbook's attributes/default.rb
# and recipes/default.rb with a recording stand-in for Chef's DSL and prints, as JSON, the node
# attributes and every resource the recipe declares (type, name, properties, actions,
# notifications). It is not Chef: it shows what the recipe asks for, not how Chef does it.
require 'json'

# `default['a']['b'] = v` in attribute files.
class AttributeTree < Hash
  def [](key)
    key?(key) ? super : (self[key] = AttributeTree.new)
  end
end

# The context of an attribute file.
class AttributeFile
  attr_reader :default

  def initialize
    @default = AttributeTree.new
  end
end

# Plain hashes, as a node's attributes read: a missing key is nil.
def plain(value)
  value.is_a?(Hash) ? value.transform_values { |v| plain(v) } : value
end

def deep_merge(base, over)
  base.merge(over) { |_, a, b| a.is_a?(Hash) && b.is_a?(Hash) ? deep_merge(a, b) : b }
end

# One declared resource: each call in its block is a property, except the few that are not.
# A BasicObject, so that properties named like Kernel methods (`system true`) are recorded.
class Resource < BasicObject
  attr_reader :record

  def initialize(type, name)
    @record = { 'type' => type.to_s, 'name' => name, 'properties' => {}, 'actions' => [],
                'notifies' => [] }
  end

  def action(*actions)
    @record['actions'].concat(actions.flatten.map(&:to_s))
  end

  def notifies(action, target, timing = :delayed)
    @record['notifies'] << [action.to_s, target, timing.to_s]
  end

  def method_missing(property, *args)
    @record['properties'][property.to_s] = args.size == 1 ? args.first : args
  end

  def respond_to_missing?(*)
    true
  end
end

# The recipe's context: `node`, and any other call declares a resource.
class Recipe
  attr_reader :node, :resources

  def initialize(node)
    @node = node
    @resources = []
  end

  def method_missing(type, name = nil, &block)
    resource = Resource.new(type, name)
    resource.instance_eval(&block) if block
    @resources << resource.record
  end

  def respond_to_missing?(*)
    true
  end
end

cookbook, overrides = ARGV
attributes = AttributeFile.new
attributes.instance_eval(File.read(File.join(cookbook, 'attributes', 'default.rb')))
node = deep_merge(plain(attributes.default), JSON.parse(overrides || '{}'))
recipe = Recipe.new(node)
recipe.instance_eval(File.read(File.join(cookbook, 'recipes', 'default.rb')))
puts JSON.pretty_generate('node' => node, 'resources' => recipe.resources)
